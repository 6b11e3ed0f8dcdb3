using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Logging;

/// <summary>
/// A write-only stream straight onto a file descriptor (standard error), behind Console.Error.
/// System.Console's own writer first sets up terminal and signal handling, with a thread of its
/// own, for interactive programs; the agent only appends lines, and that set-up is a measurable part
/// of a boot with nothing to do. As System.Console does, it waits out a non-blocking descriptor that
/// is full, and drops text that cannot be written (a closed, broken or full standard error): a log
/// line that cannot be shown must not fail the boot.
/// </summary>
public sealed class StandardErrorStream(int fd) : Stream
{
    /// <summary>Console.Error for the agent: UTF-8 without a byte order mark, flushed at every write, thread-safe.</summary>
    public static TextWriter CreateWriter(int fd = 2) =>
        TextWriter.Synchronized(new StreamWriter(new StandardErrorStream(fd), new System.Text.UTF8Encoding(false)) { AutoFlush = true });

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            long written = PosixSystem.Instance.Write(fd, buffer);
            if (written >= 0)
            {
                buffer = buffer[(int)written..];
                continue;
            }

            switch (PosixException.ErrnoOf(written))
            {
                case Errno.EINTR:
                    continue;
                case Errno.EAGAIN:
                    var poll = new[] { new Pollfd { fd = fd, events = PollEvents.POLLOUT } };
                    Syscall.poll(poll, -1);
                    continue;
                default:
                    return;
            }
        }
    }

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
