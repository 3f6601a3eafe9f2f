"""The request path: routes, forwarding over pooled connections, relaying answers, deciding the outcome."""
