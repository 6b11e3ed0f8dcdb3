using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// A regular file's bytes on the real file system (ext4 under /tmp): each of the three ways of
/// moving them, holes kept, files that shrink while they are copied, and each failure on its side.
/// The kernel refuses copy_file_range across file systems with EXDEV and sendfile on some with
/// EINVAL (copy_file_range(2), sendfile(2)); those refusals are injected here to reach each way.
/// </summary>
public sealed class FileDataCopierTests : IDisposable
{
    private const int MiB = 1 << 20;

    private readonly TempDirectory _dir = new("data");

    public void Dispose() => _dir.Dispose();

    private string Source => _dir["source"];

    private string Destination => _dir["destination"];

    /// <summary>Both in-kernel ways refused, as across some pairs of file systems: read/write is left.</summary>
    private static Errno? ReadWriteOnly(string call, string? name) => call switch
    {
        "copy_file_range" => Errno.EXDEV,
        "sendfile" => Errno.EINVAL,
        _ => null,
    };

    /// <summary>Refusals that leave the named way as the first that works.</summary>
    private static FaultyPosix Using(string method, Func<string, string?, Errno?>? more = null) => new((call, name) => (method, call) switch
    {
        ("sendfile" or "read/write", "copy_file_range") => Errno.EXDEV,
        ("read/write", "sendfile") => Errno.EINVAL,
        _ => more?.Invoke(call, name),
    });

    private long Copy(FaultyPosix posix, bool writeBehind = false, FileDataCopier? copier = null, CancellationToken stop = default)
    {
        int sourceFd = Syscall.open(Source, OpenFlags.O_RDONLY | OpenFlags.O_CLOEXEC);
        int destinationFd = Syscall.open(Destination, OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_TRUNC | OpenFlags.O_CLOEXEC, FilePermissions.S_IRUSR | FilePermissions.S_IWUSR);
        try
        {
            HomeFixture.Check(sourceFd);
            HomeFixture.Check(destinationFd);
            HomeFixture.Check(Syscall.fstat(sourceFd, out var source));
            HomeFixture.Check(Syscall.fstat(destinationFd, out var destination));
            return (copier ?? new FileDataCopier(posix, writeBehind, stop)).Copy(sourceFd, destinationFd, source, destination.st_dev, "home/file");
        }
        finally
        {
            Syscall.close(sourceFd);
            Syscall.close(destinationFd);
        }
    }

    private static long Allocated(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat.st_blocks * 512;
    }

    private void WriteSource(int length) => File.WriteAllBytes(Source, HomeFixture.RandomBytes(length, seed: length));

    /// <summary>A sparse file: 64 KiB at the start, 9 MiB of data from 4 MiB (more than one chunk), 64 KiB at 20 MiB, a hole to 24 MiB.</summary>
    private void WriteSparseSource() =>
        HomeFixture.WriteSparse(_dir.Path, "source", size: 24L * MiB, dataAt: [0, .. Enumerable.Range(0, 144).Select(i => (4L * MiB) + (i * 65536L)), 20L * MiB]);

    private void AssertSameBytes() => Assert.True(File.ReadAllBytes(Source).AsSpan().SequenceEqual(File.ReadAllBytes(Destination)), "the copy's bytes differ from the source's");

    [Theory]
    [InlineData("copy_file_range")]
    [InlineData("sendfile")]
    [InlineData("read/write")]
    public void Each_way_copies_a_file_of_several_chunks_byte_for_byte(string method)
    {
        WriteSource((9 * MiB) + 123);
        var posix = Using(method);

        Assert.Equal((9 * MiB) + 123, Copy(posix));

        AssertSameBytes();
        Assert.Equal(posix.CallsOf("sendfile"), posix.CallsOf("lseek")); // each sendfile's positioning, and no hole looked for in a dense file
        Assert.Equal(method == "copy_file_range" ? 2 : 1, posix.CallsOf("copy_file_range"));
    }

    [Theory]
    [InlineData("copy_file_range")]
    [InlineData("sendfile")]
    [InlineData("read/write")]
    public void Each_way_keeps_the_holes_of_a_sparse_file(string method)
    {
        WriteSparseSource();

        Assert.Equal(24L * MiB, Copy(Using(method)));

        AssertSameBytes();
        Assert.Equal(24L * MiB, new FileInfo(Destination).Length);
        Assert.InRange(Allocated(Destination), 1, Allocated(Source) + (64 * 1024));
    }

    [Fact]
    public void A_refused_way_is_learned_once_for_the_pair_of_volumes_not_tried_for_every_file()
    {
        WriteSource(1000);
        var posix = Using("read/write");
        var copier = new FileDataCopier(posix, writeBehind: false, CancellationToken.None);

        Copy(posix, copier: copier);
        Copy(posix, copier: copier);

        AssertSameBytes();
        Assert.Equal((1, 1, 2), (posix.CallsOf("copy_file_range"), posix.CallsOf("sendfile"), posix.CallsOf("pread")));
    }

    [Fact]
    public void A_sparse_file_of_exactly_64_KiB_keeps_its_hole()
    {
        using (var stream = new FileStream(Source, FileMode.Create))
        {
            stream.SetLength(64 * 1024);
            stream.Write(HomeFixture.RandomBytes(4096, seed: 1));
        }

        Copy(new FaultyPosix());

        AssertSameBytes();
        Assert.InRange(Allocated(Destination), 1, 16 * 1024);
    }

    [Theory]
    [InlineData(Errno.EOPNOTSUPP)]
    [InlineData(Errno.EINVAL)]
    public void A_volume_that_cannot_seek_holes_gets_the_whole_file(Errno refusal)
    {
        WriteSparseSource();
        var posix = new FaultyPosix((call, name) => call == "lseek" && name == "SEEK_DATA" ? refusal : null);

        Assert.Equal(24L * MiB, Copy(posix));

        AssertSameBytes();
        Assert.Equal(1, posix.CallsOf("lseek"));
    }

    [Theory]
    [InlineData("SEEK_DATA", 1, Errno.EIO)]
    [InlineData("SEEK_DATA", 2, Errno.EOPNOTSUPP)]
    [InlineData("SEEK_HOLE", 1, Errno.EIO)]
    public void A_hole_seek_that_fails_past_the_first_or_for_another_reason_fails_the_file(string whence, int failingCall, Errno errno)
    {
        WriteSparseSource();
        int calls = 0;
        var posix = new FaultyPosix((call, name) => call == "lseek" && name == whence && ++calls == failingCall ? errno : null);

        var failure = Assert.Throws<SourceReadException>(() => Copy(posix));

        Assert.Equal(errno, failure.Errno);
    }

    [Fact]
    public void A_sparse_file_that_shrinks_while_it_is_copied_ends_where_its_data_ended()
    {
        HomeFixture.WriteSparse(_dir.Path, "source", size: 8L * MiB, dataAt: [0, 4L * MiB]);
        int copies = 0;
        var posix = new FaultyPosix
        {
            BeforeCopy = () =>
            {
                if (++copies == 2)
                {
                    HomeFixture.Check(Syscall.truncate(Source, (4L * MiB) + 4096));
                }
            },
        };

        Assert.Equal((4L * MiB) + 4096, Copy(posix));

        Assert.Equal((4L * MiB) + 4096, new FileInfo(Destination).Length);
        AssertSameBytes();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_file_that_shrinks_under_read_write_is_copied_to_where_it_ended(bool sparse)
    {
        if (sparse)
        {
            HomeFixture.WriteSparse(_dir.Path, "source", size: 8L * MiB, dataAt: [0, 4L * MiB]);
        }
        else
        {
            WriteSource(8 * MiB);
        }

        long end = (4L * MiB) + 10;
        var posix = new FaultyPosix(ReadWriteOnly) { ReadsEndAt = end };

        Assert.Equal(end, Copy(posix));

        Assert.Equal(end, new FileInfo(Destination).Length);
        Assert.True(File.ReadAllBytes(Source).AsSpan(0, (int)end).SequenceEqual(File.ReadAllBytes(Destination)));
    }

    [Theory]
    [InlineData(Errno.EPERM)]
    [InlineData(Errno.ENOSYS)]
    public void A_volume_that_cannot_extend_by_truncate_gets_a_zero_written_at_the_end_as_fusefat_needs(Errno refusal)
    {
        WriteSparseSource();
        var posix = new FaultyPosix((call, _) => call == "ftruncate" ? refusal : null);

        Copy(posix);

        AssertSameBytes();
        Assert.Equal(24L * MiB, new FileInfo(Destination).Length);
    }

    [Fact]
    public void A_refused_truncate_of_a_file_already_at_its_length_is_nothing_to_extend()
    {
        HomeFixture.WriteSparse(_dir.Path, "source", size: 8L * MiB, dataAt: [0, (8L * MiB) - 65536]);
        var posix = new FaultyPosix((call, _) => call is "ftruncate" ? Errno.EPERM : call is "pwrite" ? Errno.EIO : null);

        Copy(posix);

        AssertSameBytes();
    }

    [Theory]
    [InlineData(Errno.EIO, null)]
    [InlineData(Errno.EPERM, Errno.ENOSPC)]
    public void A_trailing_hole_that_cannot_be_made_fails_the_file_on_the_workspace_side(Errno truncateFails, Errno? zeroWriteFails)
    {
        WriteSparseSource();
        var posix = new FaultyPosix((call, _) => call == "ftruncate" ? truncateFails : call == "pwrite" ? zeroWriteFails : null);

        var failure = Assert.Throws<DestinationWriteException>(() => Copy(posix));

        Assert.Equal(zeroWriteFails ?? truncateFails, failure.Errno);
        Assert.StartsWith("extend home/file in the workspace: ", failure.Message);
    }

    [Fact]
    public void A_stop_request_is_seen_before_the_first_chunk()
    {
        WriteSource(MiB);
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        var posix = new FaultyPosix();

        Assert.Throws<OperationCanceledException>(() => Copy(posix, stop: stop.Token));

        Assert.Equal(0, posix.CallsOf("copy_file_range"));
    }

    [Fact]
    public void Write_behind_starts_the_writeback_of_each_chunk_of_1_MiB_and_more_where_it_was_written()
    {
        WriteSource((3 * MiB) + 5);
        var posix = Using("read/write");

        Copy(posix, writeBehind: true);

        AssertSameBytes();
        Assert.Equal([(0L, (long)MiB), (MiB, MiB), (2L * MiB, MiB)], posix.WritebackStarted.Order());
    }

    [Fact]
    public void Without_write_behind_no_writeback_is_started()
    {
        WriteSource(3 * MiB);
        var posix = new FaultyPosix();

        Copy(posix, writeBehind: false);

        Assert.Empty(posix.WritebackStarted);
    }

    [Fact]
    public void Short_writes_are_continued_where_they_stopped()
    {
        WriteSource((2 * MiB) + 77);
        var posix = new FaultyPosix(ReadWriteOnly) { WritesAtMost = 100_000 };

        Copy(posix);

        AssertSameBytes();
    }

    [Fact]
    public void A_write_that_moves_nothing_fails_the_file_instead_of_retrying_forever()
    {
        WriteSource(1000);
        var posix = new FaultyPosix(ReadWriteOnly) { WritesAtMost = 0 };

        var failure = Assert.Throws<DestinationWriteException>(() => Copy(posix));

        Assert.Equal(Errno.EIO, failure.Errno);
    }

    [Fact]
    public void An_in_kernel_copy_that_fails_with_EIO_is_retried_by_read_write_which_names_the_side()
    {
        WriteSource(2 * MiB);
        int failures = 0;
        var posix = new FaultyPosix((call, _) => call == "copy_file_range" && failures++ == 0 ? Errno.EIO : null);

        Assert.Equal(2 * MiB, Copy(posix));

        AssertSameBytes();
        Assert.Equal(2, posix.CallsOf("pread"));
    }

    [Fact]
    public void A_read_that_fails_fails_the_file_on_the_home_side()
    {
        WriteSource(1000);
        var posix = new FaultyPosix((call, _) => call is "copy_file_range" or "pread" ? Errno.EIO : null);

        Assert.Equal(Errno.EIO, Assert.Throws<SourceReadException>(() => Copy(posix)).Errno);
    }

    [Theory]
    [InlineData("copy_file_range", Errno.ENOSPC)]
    [InlineData("read/write", Errno.ENOSPC)]
    [InlineData("read/write", Errno.EDQUOT)]
    public void A_full_workspace_fails_the_file_on_the_workspace_side(string method, Errno errno)
    {
        WriteSource(1000);
        var posix = Using(method, (call, _) => call is "copy_file_range" or "pwrite" ? errno : null);

        var failure = Assert.Throws<DestinationWriteException>(() => Copy(posix));

        Assert.Equal((errno, true), (failure.Errno, failure.OutOfSpace));
        Assert.StartsWith("write home/file in the workspace: ", failure.Message);
    }

    [Fact]
    public void An_empty_file_is_not_read_at_all()
    {
        WriteSource(0);
        var posix = new FaultyPosix();

        Assert.Equal(0, Copy(posix));

        Assert.Empty(posix.Calls);
    }
}
