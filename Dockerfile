# EmbedTrack as a Cell Tracking Challenge container.
#
#   DOCKER_BUILDKIT=0 docker build -t embedtrack .
#   docker run --rm [--gpus all] -v /path/to/ctc:/data embedtrack DATASET SEQ [embedtrack run options]
#
# Build arguments:
#   BASE_IMAGE  a CUDA PyTorch runtime image; its torch is kept (never upgraded by pip).
#               Without registry access, docker/build_base.sh builds a local stand-in under this same tag.
#   MODELS_DIR  folder (inside the build context) of extra model folders named after their dataset,
#               copied to /opt/embedtrack/models/<DATASET>; e.g. --build-arg MODELS_DIR=extra_models
#   UID         user id of the non-root user the container runs as (default 1000)
# Only the legacy-builder feature set is used, so DOCKER_BUILDKIT=0 works (it uses a local BASE_IMAGE as is).
ARG BASE_IMAGE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime
FROM ${BASE_IMAGE}

ARG MODELS_DIR=docker/extra_models
ARG UID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The package and its dependencies; a constraint pins torch to the base image's own build (CUDA or not).
COPY setup.cfg pyproject.toml /tmp/embedtrack-src/
COPY ctc /tmp/embedtrack-src/ctc
COPY embedtrack /tmp/embedtrack-src/embedtrack
RUN python -c "import torch; print('torch==' + torch.__version__)" > /tmp/torch-pin.txt \
    && echo "keeping the base image's $(cat /tmp/torch-pin.txt)" \
    && python -m pip install -c /tmp/torch-pin.txt /tmp/embedtrack-src \
    && python -c "import torch, embedtrack, ctc; print('installed embedtrack', embedtrack.__version__, 'on torch', torch.__version__)" \
    && rm -rf /tmp/embedtrack-src /tmp/torch-pin.txt /root/.cache

# tini runs as PID 1 and passes SIGTERM (docker stop) on to embedtrack, which stops like on Ctrl-C and removes
# its temporary files; without an init the signal would be ignored until docker kills the container.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini >/dev/null \
    && rm -rf /var/lib/apt/lists/* && tini --version

COPY docker/entrypoint.sh /usr/local/bin/embedtrack-docker
COPY docker/ctc_datasets.txt /usr/local/share/embedtrack/ctc_datasets.txt

# Extra models baked in: every sub-folder of MODELS_DIR.
COPY ${MODELS_DIR}/ /opt/embedtrack/models/
RUN find /opt/embedtrack/models -mindepth 1 -maxdepth 1 ! -type d -delete \
    && echo "extra models: $(ls /opt/embedtrack/models | tr '\n' ' ')"

# Run as a non-root user; nothing is downloaded at run time.
RUN if getent passwd "${UID}" >/dev/null; then useradd --create-home --shell /bin/bash embedtrack; \
    else useradd --create-home --shell /bin/bash --uid "${UID}" embedtrack; fi
USER embedtrack
WORKDIR /home/embedtrack
ENV HOME=/home/embedtrack

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/embedtrack-docker"]
CMD ["--help"]
