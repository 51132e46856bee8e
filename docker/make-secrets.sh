#!/bin/sh
# Makes docker/secrets/: a TLS certificate for the redirector and boxes, and the configs
# that carry keys: redirector.conf (conf/ + the token master key) and box-N.conf (conf/ +
# the box's derived key). Needs openssl and a built
# bin/echosctl. Keep docker/secrets/ out of git; rotate by re-running with a new kid.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
	-subj "/CN=echos" -addext "subjectAltName=DNS:box-1.example.net,DNS:box-2.example.net" \
	-keyout secrets/key.pem -out secrets/cert.pem 2>/dev/null
master="1:$(openssl rand -hex 32)"
{ cat conf/redirector.conf; printf 'token.master = %s\ntoken.sign_kid = 1\n' "$master"; } \
	> secrets/redirector.conf
for box in box-1 box-2; do
	{ cat "conf/$box.conf"
	  printf 'token.key = %s\n' "$(../bin/echosctl derive-key --master "$master" --box "$box")"
	} > "secrets/$box.conf"
done
echo "secrets written to $(pwd)/secrets"
