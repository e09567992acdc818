#!/bin/sh
# As Kafka's own script: the API versions each broker supports (the compose healthcheck).
exec java -Xmx128m -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties \
    -cp '/opt/kafka/libs/*' kafka.admin.BrokerApiVersionsCommand "$@"
