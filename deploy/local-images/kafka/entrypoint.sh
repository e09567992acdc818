#!/bin/sh
# KAFKA_FOO_BAR=x becomes foo.bar=x in server.properties (the official image's rule);
# the storage is formatted once, with CLUSTER_ID.
set -eu
props=/opt/kafka/config/server.properties
: > "$props"
env | grep '^KAFKA_' | grep -v '^KAFKA_HEAP_OPTS=' | while IFS='=' read -r name value; do
    key=$(printf '%s' "${name#KAFKA_}" | tr 'A-Z' 'a-z' | tr '_' '.')
    printf '%s=%s\n' "$key" "$value" >> "$props"
done
dirs=$(sed -n 's/^log\.dirs=//p' "$props")
if [ ! -f "${dirs:-/var/lib/kafka/data}/meta.properties" ]; then
    java -Xmx256m -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format \
        -t "${CLUSTER_ID:?set CLUSTER_ID}" -c "$props" --ignore-formatted
fi
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration=file:/opt/kafka/config/log4j.properties \
    -cp '/opt/kafka/libs/*' kafka.Kafka "$props"
