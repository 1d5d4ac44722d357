FROM python:3.11-slim
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
