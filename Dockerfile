# One image for the web service and the workers (docker-compose.yml picks the command).
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/assay
# torch from PyPI: the CUDA build, so workers use a GPU when the host gives them one.
RUN pip install "torch==2.13.0"
COPY pyproject.toml README.md alembic.ini ./
COPY app app
COPY workers workers
COPY migrations migrations
COPY templates templates
COPY static static
COPY --from=assets /assets/node_modules/htmx.org/dist node_modules/htmx.org/dist
COPY --from=assets /assets/node_modules/swagger-ui-dist node_modules/swagger-ui-dist
RUN pip install -e . && useradd --create-home assay && mkdir -p /data && chown assay /data
USER assay
ENV ASSAY_DATA_DIR=/data
EXPOSE 8000
CMD ["assay", "serve", "--host", "0.0.0.0", "--no-worker"]
