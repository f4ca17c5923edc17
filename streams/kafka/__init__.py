"""The Kafka layer: the worker's producer (retries, record batches), Faust's transport with its fixes,
changelog fencing, cluster administration (reachability, topics) and the file replay into the raw topic."""
