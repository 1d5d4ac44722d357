FROM python:3.11-slim
# pg_dump / pg_restore for `refuge backup` and `refuge restore`: Debian 12's client is PostgreSQL 15, the
# major version of the compose file's server.
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY exchange ./exchange
COPY beds ./beds
COPY ledger ./ledger
COPY templates ./templates
RUN pip install --no-cache-dir -e .
EXPOSE 8000
CMD ["refuge", "serve", "--host", "0.0.0.0", "--port", "8000"]
