# Diffusion Lab image. CPU PyTorch by default; for NVIDIA GPUs build with e.g.
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 -t diffusion-lab:cuda .

# Browser-mode Create: onnxruntime-web from the npm registry at the lockfile's version, copied
# into web/app/vendor (web/scripts/vendor.mjs); the app serves these files itself, never a CDN.
FROM node:20-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
COPY web/scripts ./scripts
RUN mkdir -p app && npm ci --no-audit --no-fund --ignore-scripts && npm run --silent vendor

FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DIFFUSION_LAB_USER_MODELS=/home/lab/user_models

RUN useradd --create-home --uid 10001 lab
WORKDIR /app

COPY requirements.txt .
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" -r requirements.txt

COPY --chown=10001:10001 . .
COPY --from=web --chown=10001:10001 /web/app/vendor ./web/app/vendor
USER 10001:10001

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read().strip() == b'ok' else 1)"]

CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
