"""Tests of the Python SDK: the author surface in memory (TestCall,
Config) and the wire through a real grpc.aio server on a unix socket,
driven by a grpc.aio client playing the host."""

import asyncio
import base64
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from grpc import aio  # noqa: E402

import rspp_node  # noqa: E402
from rspp_node import TEXT_DELTA, Config, ConfigError, Event, Info, Node, TestCall, Text  # noqa: E402
from rspp_node._serve import start  # noqa: E402
from rspp_node.gen import rspp_pb2 as pb  # noqa: E402
from rspp_node.gen import rspp_pb2_grpc as pbg  # noqa: E402

DF = pb.DataFrame


class Upper(Node):
    def info(self):
        return Info(name="upper", kind="custom", version="1.0.0", accepts=[TEXT_DELTA], emits=[TEXT_DELTA], input_window=4)

    async def invoke(self, call):
        async for ev in call.inputs():
            if ev.text:
                call.emit_text(ev.type, ev.text.text.upper(), ev.text.final)


def wire_text(text):
    return pb.Event(event_type=TEXT_DELTA, lane=pb.LANE_DATA, schema_version=1, text=pb.TextPayload(text=text))


class AuthorSurface(unittest.IsolatedAsyncioTestCase):
    async def test_test_call_stamps_ids(self):
        c = TestCall([Event(type=TEXT_DELTA, text=Text("hi"))], id="inv-1", session_id="s1", turn_id="t1", node_id="n1")
        await Upper().invoke(c)
        self.assertEqual(c.texts(), ["HI"])
        o = c.outputs[0]
        self.assertEqual((o.invocation_id, o.session_id, o.node_id, o.lane, o.schema_version), ("inv-1", "s1", "n1", "data", 1))
        self.assertEqual(c.consumed_inputs, 1)

    async def test_emit_after_cancel_raises(self):
        c = TestCall([])
        c.cancel()
        with self.assertRaises(rspp_node.CancelledError):
            c.emit_text(TEXT_DELTA, "late")
        self.assertEqual(c.outputs, [])

    def test_config_decode_names_unknown_key(self):
        self.assertEqual(Config("n1", "/etc/x", b'{"prefix": "a"}').decode({"prefix": "", "n": 1}), {"prefix": "a", "n": 1})
        with self.assertRaisesRegex(ConfigError, 'unknown key "nope"'):
            Config("n1", "", b'{"nope": 1}').decode({"prefix": ""})
        with self.assertRaisesRegex(ConfigError, 'key "prefix" is int, want str'):
            Config("n1", "", b'{"prefix": 1}').decode({"prefix": ""})
        self.assertEqual(Config("n1", "/etc/x", b"").path("a.txt"), "/etc/x/a.txt")

    def test_mtls_cert_is_unpadded_der_with_localhost_san(self):
        try:
            from cryptography import x509
        except ImportError:
            self.skipTest("needs python3-cryptography (Debian) for the mtls channel")
        from rspp_node._serve import _server_cert
        _, _, cert = _server_cert()
        self.assertFalse(cert.endswith("="))
        der = base64.b64decode(cert + "=" * (-len(cert) % 4))
        c = x509.load_der_x509_certificate(der)
        san = c.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        self.assertIn("localhost", san.get_values_for_type(x509.DNSName))


class Wire(unittest.IsolatedAsyncioTestCase):
    async def serve(self, node):
        self.dir = tempfile.mkdtemp(prefix="rsdk")
        self.server, self.sock, self.line, _ = await start(node, socket_dir=self.dir, client_cert="", handshake=lambda l: None)
        self.channel = aio.insecure_channel("unix:" + self.sock)
        self.stub = pbg.NodeStub(self.channel)

    async def asyncTearDown(self):
        await self.channel.close()
        await self.server.stop(0)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def frames_until_end(self, data):
        got = []

        async def read():
            while True:
                f = await data.read()
                if f is aio.EOF:
                    return
                got.append(f)
                if f.kind == DF.KIND_END:
                    return
        await asyncio.wait_for(read(), 5)
        return got

    async def test_handshake_and_describe(self):
        await self.serve(Upper())
        f = self.line.split("|")
        self.assertEqual(len(f), 6)
        self.assertEqual([f[0], f[1], f[2], f[4], f[5]], ["1", "2", "unix", "grpc", ""])
        self.assertEqual(os.path.dirname(f[3]), self.dir)
        info = await self.stub.Describe(pb.DescribeRequest())
        self.assertEqual((info.protocol_version, info.input_window, info.kind), (2, 4, "custom"))
        self.assertEqual(list(info.emits), [TEXT_DELTA])

    async def test_credits_and_outputs(self):
        await self.serve(Upper())
        reqs = [DF(kind=DF.KIND_OPEN, invocation_id="i1", session_id="s1", turn_id="t1", node_id="n1", authority_epoch=7)]
        reqs += [DF(kind=DF.KIND_EVENT, invocation_id="i1", event=wire_text(w)) for w in "abcd"]
        reqs += [DF(kind=DF.KIND_CLOSE_INPUT, invocation_id="i1")]
        data = self.stub.Data(iter(reqs))
        frames = await self.frames_until_end(data)
        data.cancel()
        self.assertEqual(sum(f.credit for f in frames if f.kind == DF.KIND_CREDIT), 4)
        outs = [f for f in frames if f.kind == DF.KIND_EVENT]
        self.assertEqual([f.event.text.text for f in outs], ["A", "B", "C", "D"])
        for f in outs:
            self.assertEqual((f.event.invocation_id, f.event.session_id, f.event.lane), ("i1", "s1", pb.LANE_DATA))
            self.assertEqual(f.event.authority_epoch, 7, "outputs carry the epoch of their OPEN")
        self.assertFalse(frames[-1].HasField("error"))

    async def test_window_overrun_is_protocol_error(self):
        class Stall(Node):
            def info(self):
                return Info(name="stall", kind="custom", version="1", input_window=2)

            async def invoke(self, call):
                await call.cancelled.wait()
        await self.serve(Stall())
        reqs = [DF(kind=DF.KIND_OPEN, invocation_id="i1")] + [DF(kind=DF.KIND_EVENT, invocation_id="i1", event=wire_text(w)) for w in "abc"]
        q = asyncio.Queue()
        for r in reqs:
            q.put_nowait(r)

        async def gen():
            while True:
                yield await q.get()
        data = self.stub.Data(gen())
        frames = await self.frames_until_end(data)
        data.cancel()
        self.assertEqual(frames[-1].error.kind, pb.ERROR_KIND_PROTOCOL)

    async def test_cancel_ends_at_once_and_nothing_after(self):
        late = []

        class Slow(Node):
            def info(self):
                return Info(name="slow", kind="custom", version="1")

            async def invoke(self, call):
                async for _ in call.inputs():
                    call.emit_text(TEXT_DELTA, "first")
                    try:
                        await asyncio.sleep(10)
                    except asyncio.CancelledError:
                        late.append("task cancelled")
                        raise
        await self.serve(Slow())
        q = asyncio.Queue()
        q.put_nowait(DF(kind=DF.KIND_OPEN, invocation_id="i1"))
        q.put_nowait(DF(kind=DF.KIND_EVENT, invocation_id="i1", event=wire_text("x")))

        async def gen():
            while True:
                yield await q.get()
        data = self.stub.Data(gen())
        first = await asyncio.wait_for(data.read(), 5)
        self.assertEqual(first.kind, DF.KIND_EVENT)
        ctrl = self.stub.Control()
        await ctrl.write(pb.ControlRequest(kind=pb.ControlRequest.KIND_CANCEL, seq=7, invocation_id="i1", reason="barge-in"))
        reply = await asyncio.wait_for(ctrl.read(), 5)
        self.assertEqual((reply.seq, reply.found), (7, True))
        rest = await self.frames_until_end(data)
        self.assertEqual([f.kind for f in rest], [DF.KIND_END])
        self.assertEqual(rest[0].error.kind, pb.ERROR_KIND_CANCELLED)
        await asyncio.sleep(0.05)
        self.assertEqual(late, ["task cancelled"])
        data.cancel()
        ctrl.cancel()

    async def test_configure_error_names_key(self):
        class Strict(Node):
            def info(self):
                return Info(name="strict", kind="custom", version="1")

            async def configure(self, cfg):
                cfg.decode({"prefix": ""})

            async def invoke(self, call):
                pass
        await self.serve(Strict())
        with self.assertRaises(aio.AioRpcError) as cm:
            await self.stub.Configure(pb.ConfigureRequest(node_id="n1", config_json=b'{"nope": true}'))
        self.assertEqual(cm.exception.code().name, "INVALID_ARGUMENT")
        self.assertIn('unknown key "nope"', cm.exception.details())


if __name__ == "__main__":
    unittest.main()
