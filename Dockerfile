# One image for every csm-batch process: api (gunicorn), worker and beat (celery), migrate.
# No model weights are baked in: the worker reads them from the hub cache volume at $HF_HOME,
# filled once by `docker-compose run --rm --no-deps worker python -m csm.download`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CSM_DATA_DIR=/data \
    HF_HOME=/data/huggingface

# The mount points exist and belong to the app user, so empty named volumes mounted there
# start out writable by it (Docker copies the image directory's ownership into a new volume).
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /data/huggingface \
    && chown -R app:app /data

WORKDIR /app

# Dependencies first: this layer (torch with its CUDA wheels, several GB) is rebuilt only when
# requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt

# The project itself; its dependencies are already pinned above. Installed in place
# (editable), so `csm-batch` imports from /app and finds alembic.ini and migrations/ there.
COPY . .
RUN pip install --no-deps --editable .

USER app
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "api.wsgi:app"]
