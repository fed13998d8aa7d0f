"""Local servers for development and tests: a RabbitMQ node and a throwaway PostgreSQL cluster,
installed from Debian's packages when missing."""
