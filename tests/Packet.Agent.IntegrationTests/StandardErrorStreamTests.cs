using Mono.Unix;
using Mono.Unix.Native;
using Packet.Agent.Logging;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The agent's standard error writer on real pipes and files.</summary>
public sealed class StandardErrorStreamTests : IDisposable
{
    private readonly TempDirectory _dir = new("stderr");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_message_larger_than_the_pipe_arrives_whole_and_in_order()
    {
        var (reading, writing) = Pipe();
        string message = string.Concat(Enumerable.Range(0, 20_000).Select(i => $"é{i:D5}\n"));
        var reader = Reader.Start(reading, delay: TimeSpan.Zero);

        using (var writer = StandardErrorStream.CreateWriter(writing))
        {
            writer.Write(message);
        }

        HomeFixture.Check(Syscall.close(writing));
        Assert.Equal(message, reader.Text());
    }

    [Fact]
    public void A_full_non_blocking_pipe_is_waited_out_not_dropped()
    {
        var (reading, writing) = Pipe();
        HomeFixture.Check(Syscall.fcntl(writing, FcntlCommand.F_SETFL, (long)OpenFlags.O_NONBLOCK));
        string message = new('x', 1 << 20);
        var reader = Reader.Start(reading, delay: TimeSpan.FromMilliseconds(200));

        StandardErrorStream.CreateWriter(writing).Write(message);

        HomeFixture.Check(Syscall.close(writing));
        Assert.Equal(message.Length, reader.Text().Length);
    }

    [Fact]
    public void A_pipe_nobody_reads_drops_the_text_without_failing()
    {
        var (reading, writing) = Pipe();
        HomeFixture.Check(Syscall.close(reading));

        var writer = StandardErrorStream.CreateWriter(writing);
        writer.WriteLine("nobody is listening");

        HomeFixture.Check(Syscall.close(writing));
    }

    [Fact]
    public void A_log_file_opened_for_appending_is_appended_to()
    {
        string log = _dir["agent.log"];
        File.WriteAllText(log, "written before\n");
        int fd = Syscall.open(log, OpenFlags.O_WRONLY | OpenFlags.O_APPEND);
        HomeFixture.Check(fd);
        var writer = StandardErrorStream.CreateWriter(fd);

        writer.WriteLine("first");
        File.AppendAllText(log, "someone else\n");
        writer.WriteLine("second");

        HomeFixture.Check(Syscall.close(fd));
        Assert.Equal("written before\nfirst\nsomeone else\nsecond\n", File.ReadAllText(log));
    }

    private static (int Reading, int Writing) Pipe()
    {
        HomeFixture.Check(Syscall.pipe(out int reading, out int writing));
        return (reading, writing);
    }

    /// <summary>Drains a pipe on a thread of its own (the writer blocks until it does).</summary>
    private sealed class Reader
    {
        private readonly Thread _thread;
        private string? _text;

        private Reader(int fd, TimeSpan delay)
        {
            _thread = new Thread(() =>
            {
                Thread.Sleep(delay);
                using var stream = new UnixStream(fd, ownsHandle: true);
                using var text = new StreamReader(stream, System.Text.Encoding.UTF8);
                _text = text.ReadToEnd();
            });
            _thread.Start();
        }

        public static Reader Start(int fd, TimeSpan delay) => new(fd, delay);

        public string Text()
        {
            Assert.True(_thread.Join(TimeSpan.FromSeconds(30)), "the reader never saw the end of the pipe");
            return _text!;
        }
    }
}
