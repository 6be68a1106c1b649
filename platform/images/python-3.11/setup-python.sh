#!/bin/sh
# Shared by both python-3.11 Dockerfiles: a virtual environment at /opt/venv made with the
# interpreter named by $1, usable by whatever user the executor runs a job as.
set -eu
python=$1

"$python" -m venv /opt/venv
/opt/venv/bin/python -m pip --version

# `python3`, `python` and `pip` must mean the venv's even where an executor replaces PATH with
# the usual one: /usr/local/bin comes before /usr/bin there. Wrappers, not links: Python finds
# its venv from the path it was started by, and a link would start the system's bare Python.
for name in python python3 pip pip3; do
    printf '#!/bin/sh\nexec /opt/venv/bin/%s "$@"\n' "$name" > "/usr/local/bin/$name"
    chmod 755 "/usr/local/bin/$name"
done

# A user for jobs (uid 1000) and a HOME any uid can write: the docker executor may run a job
# under a uid this image has never heard of, and pip, matplotlib and friends want a HOME.
grep -q '^ferry:' /etc/group || echo 'ferry:x:1000:' >> /etc/group
grep -q '^ferry:' /etc/passwd || echo 'ferry:x:1000:1000:Ferry job:/home/ferry:/bin/sh' >> /etc/passwd
mkdir -p /home/ferry
chmod 1777 /home/ferry

# Writable by every user: a job's `pip install x` lands in its own container's copy of the
# venv, which is how FloydHub jobs installed what the image lacked.
chmod -R a+rwX /opt/venv
