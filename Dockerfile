# syntax=docker/dockerfile:1
# ticker: the service image. `docker compose up` (docker-compose.yml) runs it beside Redis;
# docs/deploy.md has the production layout.

FROM python:3.11-slim AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/ticker
WORKDIR /src
# The locked dependencies first: this layer is rebuilt only when uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY ticker ./ticker
RUN uv sync --locked --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin ticker
# The same base image, so the virtualenv's interpreter links stay valid.
COPY --from=build /opt/ticker /opt/ticker
# ticker's settings for a container, in one place (docker-compose.yml does not repeat them):
# listen on every interface, on the port EXPOSEd below and probed by the HEALTHCHECK.
ENV PATH=/opt/ticker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TICKER_HOST=0.0.0.0 \
    TICKER_PORT=8000
USER ticker
WORKDIR /home/ticker
EXPOSE 8000
# Ready means Redis answers (GET /readyz is 503 otherwise).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('TICKER_PORT', '8000'), timeout=4)"]
# Exec form: ticker is PID 1 and gets SIGTERM itself (it shuts down cleanly on it).
CMD ["ticker", "serve"]
