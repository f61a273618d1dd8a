#!/usr/bin/env bash
# Make the certificates of the TLS tests in DIR (fresh, valid for two days, EC P-256):
#   ca.crt ca.key            the test CA
#   server.crt server.key    signed by it, for 127.0.0.1 and localhost
#   client.crt client.key    signed by it, for mutual TLS
#   other-ca.crt             a CA that signed nothing here (the "wrong CA" case)
# Used by the Rust, C, ctypes, C++ and Python suites and the TLS benchmark.
#
#   scripts/lib/tls-certs.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
command -v openssl >/dev/null || { echo "openssl is not installed (Debian: apt-get install openssl)" >&2; exit 1; }
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ca() {
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
leaf() { # NAME CN EXTENSIONS
  key "$1.key"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
    -days 2 -out "$1.crt" -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "redipc test CA"
ca other-ca "redipc other CA"
rm -f other-ca.key
leaf server localhost "subjectAltName=IP:127.0.0.1,DNS:localhost
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
leaf client redipc-test-client "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
chmod 600 ./*.key
