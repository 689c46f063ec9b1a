// librdkafka, the Kafka C client (Debian: librdkafka-dev for the headers; at run time any
// librdkafka >= 2.2 as librdkafka.so.1, see scripts/install.d/30-kafka).
#include <librdkafka/rdkafka.h>

// rd_kafka_producev is variadic and its RD_KAFKA_V_* macros do not import into Swift: one keyed
// produce, the payload copied, with a per-message opaque for the delivery report.
static inline rd_kafka_resp_err_t rec_kafka_produce(rd_kafka_t *producer, const char *topic,
                                                    const void *key, size_t key_length,
                                                    const void *value, size_t value_length,
                                                    void *message_opaque) {
    return rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_KEY((void *)key, key_length),
                             RD_KAFKA_V_VALUE((void *)value, value_length),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_OPAQUE(message_opaque), RD_KAFKA_V_END);
}
