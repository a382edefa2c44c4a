"""A TCP proxy for link-failure tests (asyncio in a background thread).

    p = TcpProxy("127.0.0.1", upstream_port)   # listens on p.port
    p.mode("pass")        # forward both ways
    p.mode("stall")       # hold bytes in both directions (connections stay open); "pass" later
                          # delivers what was held, in order
    p.mode("blackhole")   # a link that silently eats packets: live connections stall, new
                          # ones are accepted but never reach upstream (their bytes are lost)
    p.mode("refuse")      # new connections are closed at once; existing ones are reset
    p.reset()             # RST every open connection now (mode unchanged)
    p.close()

When either side of a connection goes away, the other side is closed and whatever the proxy
still held for it is dropped (a middlebox that lost its state), so a request of a dead client
never reaches the server late.
"""

import asyncio
import socket
import struct
import threading


class _Pair:
    def __init__(self, proxy, cr, cw):
        self.proxy = proxy
        self.cr, self.cw = cr, cw
        self.ur = self.uw = None
        self.closed = False

    def abort(self):
        if self.closed:
            return
        self.closed = True
        for w in (self.cw, self.uw):
            if w is None:
                continue
            try:
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
            except Exception:
                pass
        self.proxy._pairs.discard(self)

    async def pipe(self, r, w):
        try:
            while not self.closed:
                data = await r.read(65536)
                if not data:
                    break
                # A link that eats packets stalls a live TCP stream (the sender retransmits);
                # it never delivers later bytes without the earlier ones.
                while self.proxy._mode in ("stall", "blackhole") and not self.closed:
                    await asyncio.sleep(0.02)
                if self.closed:
                    break
                w.write(data)
                await w.drain()
        except Exception:
            pass
        self.abort()

    async def run(self):
        if self.proxy._mode == "refuse":
            self.abort()
            return
        if self.proxy._mode == "blackhole":
            # accepted, never connected upstream: read and drop until the client gives up
            try:
                while not self.closed and await self.cr.read(65536):
                    pass
            except Exception:
                pass
            self.abort()
            return
        try:
            self.ur, self.uw = await asyncio.open_connection(self.proxy.up_host, self.proxy.up_port)
        except OSError:
            self.abort()
            return
        await asyncio.gather(self.pipe(self.cr, self.uw), self.pipe(self.ur, self.cw))


class TcpProxy:
    def __init__(self, up_host, up_port, host="127.0.0.1"):
        self.up_host, self.up_port = up_host, up_port
        self._mode = "pass"
        self._pairs = set()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(host,), daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self, host):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self._accept, host, 0)
            self.port = self.server.sockets[0].getsockname()[1]
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    async def _accept(self, r, w):
        pair = _Pair(self, r, w)
        self._pairs.add(pair)
        await pair.run()

    def _call(self, fn):
        done = threading.Event()

        def wrap():
            try:
                fn()
            finally:
                done.set()

        self.loop.call_soon_threadsafe(wrap)
        done.wait(10)

    def mode(self, m):
        assert m in ("pass", "stall", "blackhole", "refuse")

        def apply():
            self._mode = m
            if m == "refuse":
                for p in list(self._pairs):
                    p.abort()

        self._call(apply)

    def reset(self):
        self._call(lambda: [p.abort() for p in list(self._pairs)])

    def set_upstream(self, port):
        self.up_port = port

    def close(self):
        if not self._thread.is_alive():
            return
        def stop():
            for p in list(self._pairs):
                p.abort()
            self.server.close()
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
            self.loop.call_later(0.05, self.loop.stop)

        self.loop.call_soon_threadsafe(stop)
        self._thread.join(5)
