"""The plugin side of the node protocol: handshake, rspp.v1.Node, and
go-plugin's controller and health services, on grpc.aio."""

import asyncio
import datetime
import json
import os
import secrets
import signal
import sys
from typing import Callable, Dict, Optional, Set

import grpc
from grpc import aio

from ._call import Call, CancelledError, InvalidInputError
from ._config import Config, ConfigError
from ._event import from_wire, to_wire
from ._protocol import (
    COOKIE_KEY, COOKIE_VALUE, CORE_PROTOCOL_VERSION, DEFAULT_INPUT_WINDOW, MAX_MESSAGE_BYTES, PROTOCOL_VERSION,
)
from .gen import rspp_pb2 as pb
from .gen import rspp_pb2_grpc as pbg

DF = pb.DataFrame


def log(level: str, msg: str, **fields) -> None:
    """One JSON line on stderr (the host parses it as hclog)."""
    rec = {"@level": level, "@message": msg, "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    rec.update(fields)
    sys.stderr.write(json.dumps(rec) + "\n")
    sys.stderr.flush()


class _Inv:
    __slots__ = ("call", "task", "ended", "credit")

    def __init__(self, call: Call):
        self.call = call
        self.task: Optional[asyncio.Task] = None
        self.ended = False
        self.credit = 0


class NodeService(pbg.NodeServicer):
    """rspp.v1.Node for one author Node."""

    max_early = 1024

    def __init__(self, node):
        self.node = node
        self.info = node.info()
        self.window = self.info.input_window if self.info.input_window > 0 else DEFAULT_INPUT_WINDOW
        self.invs: Dict[str, _Inv] = {}
        self.early: Dict[str, None] = {}  # cancels ahead of their OPEN, insertion-ordered

    async def Describe(self, request, context):
        i = self.info
        return pb.NodeInfo(name=i.name, kind=i.kind, version=i.version, protocol_version=PROTOCOL_VERSION,
                           accepts=list(i.accepts), emits=list(i.emits), input_window=self.window)

    async def Configure(self, request, context):
        cfg = Config(request.node_id, request.config_dir, bytes(request.config_json))
        try:
            await self.node.configure(cfg)
        except ConfigError as e:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        except Exception as e:  # noqa: BLE001 - any author error is a config error here
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"configure: {e}")
        return pb.ConfigureResponse()

    async def Health(self, request, context):
        return pb.HealthReply(serving=True, open_invocations=len(self.invs))

    async def Data(self, request_iterator, context):
        out: asyncio.Queue = asyncio.Queue()
        mine: Set[str] = set()
        batch = max(1, self.window // 2)

        async def writer():
            while True:
                f = await out.get()
                if f is None:
                    return
                await context.write(f)

        wtask = asyncio.ensure_future(writer())
        try:
            async for f in request_iterator:
                iid = f.invocation_id
                if f.kind == DF.KIND_OPEN:
                    if not iid or iid in self.invs:
                        continue
                    self._open(f, out, batch)
                    mine.add(iid)
                elif f.kind == DF.KIND_EVENT:
                    inv = self.invs.get(iid)
                    if inv is None or inv.ended or not f.HasField("event"):
                        continue
                    if inv.call.pending >= self.window:
                        # The host broke flow control: this invocation fails, the stream goes on.
                        self._end(iid, out, pb.InvocationError(kind=pb.ERROR_KIND_PROTOCOL,
                                  message=f"host exceeded the invocation's input window: more than {self.window} unconsumed inputs"))
                        continue
                    inv.call.push(from_wire(f.event))
                elif f.kind == DF.KIND_CLOSE_INPUT:
                    inv = self.invs.get(iid)
                    if inv is not None:
                        inv.call.close()
        finally:
            for iid in mine:
                inv = self.invs.pop(iid, None)
                if inv is not None and not inv.ended:
                    inv.ended = True
                    inv.call.cancel()
                    if inv.task is not None:
                        inv.task.cancel()
            out.put_nowait(None)
            try:
                await wtask
            except Exception:  # noqa: BLE001 - the host went away
                pass

    def _open(self, f, out: asyncio.Queue, batch: int) -> None:
        iid = f.invocation_id
        inv: Optional[_Inv] = None

        epoch = f.authority_epoch

        def send(ev):
            # Every output carries the epoch its invocation was opened with:
            # under a lease authority (etcd) an output without it is stale.
            w = to_wire(ev)
            w.authority_epoch = epoch
            out.put_nowait(DF(kind=DF.KIND_EVENT, invocation_id=iid, event=w))

        def consumed(n: int):
            inv.credit += n
            if inv.credit >= batch and not inv.ended:
                out.put_nowait(DF(kind=DF.KIND_CREDIT, invocation_id=iid, credit=inv.credit))
                inv.credit = 0

        call = Call(iid, f.session_id, f.turn_id, f.node_id, send, consumed)
        inv = _Inv(call)
        self.invs[iid] = inv
        call._out = out  # where cancel's END goes
        if self.early.pop(iid, 0) is None:
            self.cancel(iid, "cancelled before open")
            return
        inv.task = asyncio.ensure_future(self._run(inv, out))

    async def _run(self, inv: _Inv, out: asyncio.Queue) -> None:
        err = None
        try:
            await self.node.invoke(inv.call)
        except asyncio.CancelledError:
            err = pb.InvocationError(kind=pb.ERROR_KIND_CANCELLED, message="invocation cancelled")
        except CancelledError as e:
            err = pb.InvocationError(kind=pb.ERROR_KIND_CANCELLED, message=str(e))
        except InvalidInputError as e:
            err = pb.InvocationError(kind=pb.ERROR_KIND_INVALID_INPUT, message=str(e))
        except Exception as e:  # noqa: BLE001 - the author's failure ends this invocation only
            err = pb.InvocationError(kind=pb.ERROR_KIND_INTERNAL, message=f"{type(e).__name__}: {e}")
        if inv.call.cancelled.is_set() and err is None:
            err = pb.InvocationError(kind=pb.ERROR_KIND_CANCELLED, message="invocation cancelled")
        self._end(inv.call.id, out, err)

    def _end(self, iid: str, out: asyncio.Queue, error=None) -> None:
        inv = self.invs.get(iid)
        if inv is None or inv.ended:
            return
        inv.ended = True
        del self.invs[iid]
        inv.call.cancel()  # no emit after the end
        f = DF(kind=DF.KIND_END, invocation_id=iid)
        if error is not None:
            f.error.CopyFrom(error)
        out.put_nowait(f)
        if inv.task is not None and not inv.task.done() and asyncio.current_task() is not inv.task:
            inv.task.cancel()

    def cancel(self, iid: str, reason: str) -> bool:
        """Cancels an invocation: emit is refused from now on, END{CANCELLED}
        goes out at once, and invoke's task is cancelled. A cancel ahead of
        its OPEN is remembered."""
        inv = self.invs.get(iid)
        if inv is None:
            if len(self.early) >= self.max_early:
                self.early.pop(next(iter(self.early)))
            self.early[iid] = None
            return False
        inv.call.cancel()
        self._end(iid, inv.call._out, pb.InvocationError(kind=pb.ERROR_KIND_CANCELLED, message=f"invocation cancelled: {reason}"))
        return True

    async def Control(self, request_iterator, context):
        async for req in request_iterator:
            found = False
            if req.kind == pb.ControlRequest.KIND_CANCEL:
                found = self.cancel(req.invocation_id, req.reason or "cancelled")
            await context.write(pb.ControlReply(seq=req.seq, found=found))


def _controller_handler(on_shutdown: Callable[[], None]):
    # go-plugin's GRPCController.Shutdown(Empty) returns (Empty): empty
    # messages are zero bytes on the wire.
    async def shutdown(_req, _ctx):
        # Answer first, then go: the host waits for the exit (and kills
        # after 2 s); a few ms let the reply out.
        asyncio.get_running_loop().call_later(0.005, on_shutdown)
        return b""

    return grpc.method_handlers_generic_handler("plugin.GRPCController", {
        "Shutdown": grpc.unary_unary_rpc_method_handler(shutdown, request_deserializer=lambda b: b,
                                                        response_serializer=lambda m: m),
    })


def _health_handler():
    # grpc.health.v1.Health.Check -> HealthCheckResponse{status: SERVING (1)}.
    async def check(_req, _ctx):
        return b"\x08\x01"

    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=lambda b: b,
                                                     response_serializer=lambda m: m),
    })


def _server_cert():
    """go-plugin AutoMTLS: a self-signed cert for "localhost" (DNS SAN),
    returned as (key PEM, cert PEM, unpadded base64 of the DER)."""
    import base64
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rspp node")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=True,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    der = cert.public_bytes(serialization.Encoding.DER)
    return key_pem, cert_pem, base64.b64encode(der).decode().rstrip("=")


async def start(node, socket_dir: Optional[str] = None, client_cert: Optional[str] = None,
                handshake: Optional[Callable[[str], None]] = None, on_shutdown: Optional[Callable[[], None]] = None):
    """Starts serving node and writes the handshake line. Returns
    (server, socket path, handshake line, service)."""
    env = os.environ
    service = NodeService(node)
    d = socket_dir or env.get("PLUGIN_UNIX_SOCKET_DIR") or env.get("TMPDIR") or "/tmp"
    # The runtime accepts only a socket directly inside the directory it gave.
    sock = os.path.join(d, "plugin" + secrets.token_hex(5))
    if client_cert is None:
        client_cert = env.get("PLUGIN_CLIENT_CERT", "")
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
    server = aio.server(options=opts)
    pbg.add_NodeServicer_to_server(service, server)
    stop = on_shutdown or (lambda: os._exit(0))
    server.add_generic_rpc_handlers((_controller_handler(stop), _health_handler()))
    cert = ""
    if client_cert:
        key_pem, cert_pem, cert = _server_cert()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(),
                                            require_client_auth=True)
        server.add_secure_port("unix:" + sock, creds)
    else:
        server.add_insecure_port("unix:" + sock)
    await server.start()
    # core version | app (node protocol) version | network | address | protocol | server cert
    line = f"{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|unix|{sock}|grpc|{cert}"
    if handshake is None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    else:
        handshake(line)
    return server, sock, line, service


def serve(node) -> None:
    """Runs node as a plugin: checks it was started by the runtime, serves
    until the host stops it. Call it from the script the runtime starts."""
    env = os.environ
    name = "node"
    try:
        name = node.info().name
    except Exception:  # noqa: BLE001
        pass
    if env.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write(f"{name}: this is an RSPP node plugin: the runtime starts it (try: rspp-node check {sys.argv[0]})\n")
        sys.exit(1)
    if str(PROTOCOL_VERSION) not in env.get("PLUGIN_PROTOCOL_VERSIONS", "").split(","):
        log("error", f"host wants node protocol versions {env.get('PLUGIN_PROTOCOL_VERSIONS')}, this SDK speaks {PROTOCOL_VERSION}")
        sys.exit(1)

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def finish():
            if not done.done():
                done.set_result(None)

        loop.add_signal_handler(signal.SIGTERM, finish)
        try:
            # On the controller's Shutdown nothing is left to do gracefully:
            # the host has ended every invocation. Exit at once.
            server, *_ = await start(node, on_shutdown=lambda: os._exit(0))
        except Exception as e:  # noqa: BLE001
            log("error", "cannot serve", error=str(e))
            sys.exit(1)
        await done
        await server.stop(0)

    asyncio.run(main())
    os._exit(0)  # do not wait on grpc's threads: the host is waiting for the exit
