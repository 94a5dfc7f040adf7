# The provider as one stateless node: gunicorn project.wsgi as a non-root user. Migrations are
# a separate command (`python manage.py migrate`, once per release); docs/deploy.md shows both.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md manage.py ./
COPY oidc_provider ./oidc_provider
COPY console ./console
COPY project ./project
COPY templates ./templates
RUN pip install --no-cache-dir '.[server]' \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin oidc \
    && mkdir -p /data && chown oidc /data

USER oidc
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status != 200)"]
CMD ["gunicorn", "project.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
