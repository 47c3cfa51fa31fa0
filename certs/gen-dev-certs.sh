#!/usr/bin/env bash
# gen-dev-certs.sh [DIR]: a local development CA and certificates signed by it, in
# certs/dev/ (git-ignored). Idempotent: existing files are kept.
#   ca.crt / ca.key                     the dev CA (trust it with curl --cacert)
#   localhost.crt / localhost.key       ECDSA P-256, SAN localhost, *.localhost, 127.0.0.1, ::1
#   localhost-rsa.crt / -rsa.key        the same names with an RSA-2048 key
#   client.crt / client.key             a client certificate for mTLS (CN=dev-client)
# Never use these in production; see README "Using real certificates".
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)/dev}"
mkdir -p "$dir"
cd "$dir"
days=825

if [ ! -f ca.crt ] || [ ! -f ca.key ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout ca.key -out ca.crt -days 3650 -subj "/O=ferry dev/CN=ferry dev CA" \
        -addext "basicConstraints=critical,CA:true" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue NAME KEYSPEC SUBJECT EXTENSIONS
issue() {
    local name="$1" keyspec="$2" subject="$3" ext="$4"
    [ -f "$name.crt" ] && [ -f "$name.key" ] && return 0
    openssl req -new -newkey "$keyspec" ${5:+-pkeyopt "$5"} -nodes -keyout "$name.key" \
        -out "$name.csr" -subj "$subject" 2>/dev/null
    printf '%b' "$ext" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out "$name.crt" -days "$days" -sha256 -extfile "$name.ext" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
    chmod 600 "$name.key"
}

server_ext='basicConstraints=CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1,IP:::1\n'
client_ext='basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'

issue localhost ec "/O=ferry dev/CN=localhost" "$server_ext" ec_paramgen_curve:P-256
issue localhost-rsa rsa:2048 "/O=ferry dev/CN=localhost" "$server_ext"
issue client ec "/O=ferry dev/CN=dev-client" "$client_ext" ec_paramgen_curve:P-256
echo "dev certificates in $dir (CA: $dir/ca.crt)"
