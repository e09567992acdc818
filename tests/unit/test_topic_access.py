"""What a process says when its topics are missing (workers/topic_access.py)."""

from workers.topic_access import MissingTopics


def test_missing_topics_are_named_with_the_fix() -> None:
    assert str(MissingTopics(["p.auth-config"])) == (
        "no topic p.auth-config; `eventguard topics apply` creates it (with the prefix of "
        "EVENTGUARD_TOPIC_PREFIX)")
    assert str(MissingTopics(["a", "b"])).startswith("no topics a, b; `eventguard topics "
                                                     "apply` creates them")
