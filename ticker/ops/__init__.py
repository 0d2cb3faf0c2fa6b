"""Running the service: structured logs, Prometheus metrics, background tasks stopped
for sure, and the fleet of processes sharing a Redis."""
