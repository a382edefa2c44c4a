"""Certificates made for a test with the openssl command line: a CA, a server certificate
for localhost/127.0.0.1, and client certificates (CN=client,OU=plant,O=acme by default)."""

import os
import subprocess


def _run(*args):
    subprocess.run(args, check=True, capture_output=True)


def make_ca(d):
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", os.path.join(d, "ca.key"), "-out", os.path.join(d, "ca.pem"),
         "-subj", "/CN=Depot Test CA")
    return os.path.join(d, "ca.pem")


def make_cert(d, name, subject, server=False):
    key, csr, crt = (os.path.join(d, name + s) for s in (".key", ".csr", ".crt"))
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", subject)
    args = ["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.pem"),
            "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial", "-out", crt, "-days", "2"]
    if server:
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        args += ["-extfile", ext]
    _run(*args)
    pem = os.path.join(d, name + ".pem")
    with open(pem, "w") as f:
        f.write(open(key).read() + open(crt).read())
    return key, crt, pem


def make_all(d):
    os.makedirs(d, exist_ok=True)
    ca = make_ca(d)
    _, _, server_pem = make_cert(d, "server", "/CN=localhost", server=True)
    ckey, ccrt, _ = make_cert(d, "client", "/O=acme/OU=plant/CN=client")
    return {"ca": ca, "server_pem": server_pem, "client_key": ckey, "client_crt": ccrt}
