"""The local stack (``rapport up``): the tansu broker launcher, the worker process, the demo data and the
demo webhook deliveries. Not used by a production worker."""
