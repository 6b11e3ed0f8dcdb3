using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Listing a real directory through getdents64: every name once, from the start each time, errors returned.</summary>
public sealed class DirectoryReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new("reader");

    public DirectoryReaderTests()
    {
        for (int i = 0; i < 40; i++)
        {
            HomeFixture.Write(_dir.Path, $"file-{i:D2}-{new string('n', i)}", "x");
        }

        _dir.Create("sub");
    }

    public void Dispose() => _dir.Dispose();

    private (int Result, List<DirectoryEntry> Entries) Read(FaultyPosix posix, int bufferSize = 64 * 1024, int times = 1)
    {
        int fd = CopyHarness.Open(_dir.Path);
        try
        {
            var reader = new DirectoryReader(posix, bufferSize);
            var entries = new List<DirectoryEntry>();
            int result = 0;
            for (int i = 0; i < times; i++)
            {
                entries.Clear();
                result = reader.ReadAll(fd, entries.Add);
            }

            return (result, entries);
        }
        finally
        {
            Syscall.close(fd);
        }
    }

    [Theory]
    [InlineData(64 * 1024, 1)]
    [InlineData(256, 1)]
    [InlineData(256, 2)]
    public void Every_name_comes_once_with_its_type_whatever_the_buffer_and_however_often_it_is_read(int bufferSize, int times)
    {
        var posix = new FaultyPosix();

        var (result, entries) = Read(posix, bufferSize, times);

        Assert.Equal(0, result);
        Assert.Equal(Directory.GetFileSystemEntries(_dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal), entries.Select(e => e.Name).Order(StringComparer.Ordinal));
        Assert.Equal(DirectoryReader.DT_DIR, entries.Single(e => e.Name == "sub").Type);
        Assert.All(entries.Where(e => e.Name != "sub"), e => Assert.Equal(DirectoryReader.DT_REG, e.Type));
        if (bufferSize == 256)
        {
            Assert.True(posix.Listings.Count > 2 * times, "a small buffer takes several getdents calls");
        }
    }

    [Theory]
    [InlineData("lseek", Errno.ESPIPE)]
    [InlineData("getdents", Errno.EIO)]
    public void A_failed_rewind_or_listing_is_returned_as_its_errno(string call, Errno errno)
    {
        var (result, entries) = Read(new FaultyPosix((made, _) => made == call ? errno : null));

        Assert.Equal(-(int)errno, result);
        Assert.Empty(entries);
    }
}
