# Berth's console and embedded engine in one image (see docker-compose.yml).
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv runc busybox-static iproute2 iptables ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/berth
COPY requirements.txt .
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
ENV PATH=/opt/venv/bin:$PATH
COPY . .
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "console.asgi:application"]
