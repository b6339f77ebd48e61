# Second stage of docker/build_base.sh: a Debian rootfs (docker import) + Python venv + the CPU torch wheel.
# It stands in for the CUDA PyTorch base image on machines without registry access; see docker/build_base.sh.
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

ENV LANG=C.UTF-8 \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# pip reaches the package index only with the build machine's CA bundle (and its index, if it names one):
# both stay in the image so that the real Dockerfile's `pip install` works unchanged on top of it.
COPY ca-bundle.crt /etc/ssl/certs/host-ca-bundle.crt
COPY pip.conf /etc/pip.conf
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \
    && python -m pip install /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels /root/.cache \
    && python -c "import torch; print('stand-in base: Python', __import__('sys').version.split()[0], 'torch', torch.__version__)"

LABEL org.opencontainers.image.description="Local stand-in for a CUDA PyTorch runtime image (Debian, Python venv, CPU torch), made by docker/build_base.sh"
WORKDIR /workspace
