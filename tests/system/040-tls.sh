#!/usr/bin/env bash
# System test: HTTPS to the service. A test CA and a certificate for 127.0.0.1
# are made here; the client must trust exactly what --ca-file or AWS_CA_BUNDLE
# names, and refuse a server its trust store cannot vouch for.
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/proxy.sh
. "$KT_LIB/proxy.sh"
need_built "$KT_AWS"
command -v openssl >/dev/null || {
	echo "1..0 # SKIP openssl is not installed"
	exit 0
}

# make_ca NAME: a self-signed CA in $T/NAME.pem with its key in $T/NAME.key.
make_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=keyturn test $1" \
		-keyout "$T/$1.key" -out "$T/$1.pem" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>>"$T/openssl.log"
}

# make_server CA NAME SAN: a server key and certificate signed by CA.
make_server() {
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
		"$3" >"$T/$2.ext"
	openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$T/$2.key" \
		-out "$T/$2.csr" 2>>"$T/openssl.log" &&
		openssl x509 -req -sha256 -days 2 -in "$T/$2.csr" -CA "$T/$1.pem" \
			-CAkey "$T/$1.key" -CAcreateserial -extfile "$T/$2.ext" \
			-out "$T/$2.pem" 2>>"$T/openssl.log"
}

make_ca ca && make_ca other-ca && make_server ca server "IP:127.0.0.1" ||
	bail "openssl could not make the test certificates: $(cat "$T/openssl.log")"

KT_AWS_OPTS=(--retry-base-ms 10 --connect-timeout 2000 --timeout 5000)

# works NAME: the call succeeded and read the value over TLS.
works() {
	expect_eq "$1: succeeded" ok "$(outcome "$1")"
	expect_eq "$1: value" tls-test-value "$(json_get "$T/$1.out" 'd.get("string")' 2>/dev/null)"
}

# fails_tls NAME: the call failed in the TLS handshake (not, say, on a
# refused connection), before any HTTP answer was taken, and was not retried:
# a certificate that does not verify will not verify on the next attempt.
fails_tls() {
	expect_eq "$1: refused as a certificate (tls) failure" tls "$(outcome "$1")"
	expect_eq "$1: not retried" 1 "$(kt_attempts "$1")"
	expect_eq "$1: no HTTP answer was accepted" 0 \
		"$(json_get "$T/$1.out" 'd.get("http_status")' 2>/dev/null)"
	check "$1: the message names the certificate problem" \
		grep -qiE 'certificate|SSL|TLS|issuer|verify' "$T/$1.out"
}

# --- moto behind the TLS proxy -------------------------------------------------
start_moto
aws_cli secretsmanager create-secret --name app/db --secret-string tls-test-value \
	>/dev/null || bail "could not create the test secret in moto"
start_proxy "$MOTO_URL" --tls-cert "$T/server.pem" --tls-key "$T/server.key"
URL=$PROXY_URL

kt ca-file "$URL" --ca-file "$T/ca.pem" get-secret-value app/db
works ca-file
kt wrong-ca "$URL" --ca-file "$T/other-ca.pem" get-secret-value app/db
fails_tls wrong-ca
AWS_CA_BUNDLE=$T/ca.pem kt ca-bundle-env "$URL" get-secret-value app/db
works ca-bundle-env
AWS_CA_BUNDLE=$T/other-ca.pem kt wrong-ca-bundle-env "$URL" get-secret-value app/db
fails_tls wrong-ca-bundle-env
# The option is the more specific setting and wins over the environment.
AWS_CA_BUNDLE=$T/other-ca.pem kt ca-file-over-env "$URL" --ca-file "$T/ca.pem" \
	get-secret-value app/db
works ca-file-over-env
# The system store knows nothing of the test CA.
kt system-store "$URL" get-secret-value app/db
fails_tls system-store
# The certificate names 127.0.0.1 only; "localhost" is another name.
kt wrong-name "https://localhost:$PROXY_PORT" --ca-file "$T/ca.pem" get-secret-value app/db
fails_tls wrong-name
# Plain HTTP spoken to a TLS port is a transport failure as well, not a crash.
kt http-to-tls "http://127.0.0.1:$PROXY_PORT" get-secret-value app/db
expect_eq "http-to-tls: refused" 1 "$KT_RC"
# A CA file that cannot be read is a configuration error, found before sending.
kt missing-ca "$URL" --ca-file "$T/no-such-ca.pem" get-secret-value app/db
expect_eq "missing-ca: configuration error" config "$(outcome missing-ca)"
expect_eq "missing-ca: nothing sent" 0 "$(kt_attempts missing-ca)"

# --- moto serving TLS itself (werkzeug's server, not ours) ----------------------
MOTO_TLS_PORT=$(free_port)
"$PYTHON3" -m moto.server -H 127.0.0.1 -p "$MOTO_TLS_PORT" -s -c "$T/server.pem" \
	-k "$T/server.key" >"$T/moto-tls.log" 2>&1 &
kt_pids+=("$!")
wait_port "$MOTO_TLS_PORT" 60 || bail "moto with TLS did not start"
MOTO_URL="https://127.0.0.1:$MOTO_TLS_PORT"
AWS_CA_BUNDLE=$T/ca.pem aws_cli secretsmanager create-secret --name app/db \
	--secret-string tls-test-value >/dev/null ||
	bail "could not create the test secret in moto over TLS"
kt moto-tls "$MOTO_URL" --ca-file "$T/ca.pem" get-secret-value app/db
works moto-tls
kt moto-tls-wrong-ca "$MOTO_URL" --ca-file "$T/other-ca.pem" get-secret-value app/db
fails_tls moto-tls-wrong-ca

done_testing
