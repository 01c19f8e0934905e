# Vigil as a container: the wheel built from this checkout, installed in a slim Python image and run
# as a non-root user. `docker build -t vigil .` then `docker run -p 8000:8000 vigil`; with PostgreSQL,
# two web processes and a worker, use compose.yaml (README.md, "Production with containers").

# ---- build the wheel -----------------------------------------------------------------------
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE alembic.ini ./
COPY bot ./bot
COPY migrations ./migrations
COPY playbooks ./playbooks
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# ---- run it --------------------------------------------------------------------------------
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIGIL_LOG_FORMAT=json HOST=0.0.0.0 PORT=8000 DATABASE_URL=sqlite:////data/vigil.db
COPY --from=build /wheels /wheels
# The postgres extra brings the PostgreSQL driver; SQLite needs nothing more.
RUN pip install --no-cache-dir "$(ls /wheels/vigil_ir-*.whl)[postgres]" && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --create-home vigil
USER vigil
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=4)"
CMD ["vigil", "serve"]
