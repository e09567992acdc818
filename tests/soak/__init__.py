"""The soak (`make soak`): key changes and membership changes for a long time, measured."""
