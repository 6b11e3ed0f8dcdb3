using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The scan before a copy: what the copy will write, counted as the copy will count it.</summary>
public sealed class TreeScannerTests : IDisposable
{
    private readonly TempDirectory _dir = new("scanner");

    public TreeScannerTests()
    {
        Home = _dir.Create("home");
        HomeFixture.Write(Home, "a", new string('a', 100));
        HomeFixture.Write(Home, "d/b", new string('b', 5000));
        HomeFixture.Write(Home, "h1", "0123456789");
        HomeFixture.Link(Home, "h1", "d/h2");
        HomeFixture.Symlink(Home, "a", "s");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(Home, "p"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        HomeFixture.DeadSocket(Path.Join(Home, "d/sock"));
        HomeFixture.WriteSparse(Home, "sparse", size: 16 << 20, dataAt: [0]);
        HomeFixture.Write(Home, "workspace/big", new string('w', 20000));
    }

    private string Home { get; }

    public void Dispose() => _dir.Dispose();

    private static long Allocated(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat.st_blocks * 512;
    }

    private TreeSize Scan(IPosix? posix = null, string? existing = null, bool excludeWorkspace = true, CancellationToken stop = default)
    {
        int source = CopyHarness.Open(Home);
        int existingFd = existing is null ? -1 : CopyHarness.Open(existing);
        try
        {
            HomeFixture.Check(Syscall.stat(Path.Join(Home, "workspace"), out var workspace));
            return new TreeScanner(posix ?? new FaultyPosix()).Scan(source, existingFd, excludeWorkspace ? (workspace.st_dev, workspace.st_ino) : null, stop);
        }
        finally
        {
            Syscall.close(source);
            if (existingFd >= 0)
            {
                Syscall.close(existingFd);
            }

            Assert.Empty(OpenDescriptors.Under(_dir.Path));
        }
    }

    [Fact]
    public void Entries_bytes_and_blocks_are_what_the_copy_writes_sockets_the_workspace_and_second_names_left_out()
    {
        var size = Scan();

        // a, d, d/b, h1, d/h2 (another name), s, p, sparse; not d/sock, not the workspace.
        Assert.Equal(8, size.Entries);
        Assert.Equal(1, size.ExtraLinks);
        Assert.Equal(100 + 5000 + 10 + (16L << 20), size.Bytes);
        long allocated = new[] { "a", "d", "d/b", "h1", "s", "p", "sparse" }.Sum(p => Allocated(Path.Join(Home, p)));
        Assert.Equal(allocated, size.AllocatedBytes);
        Assert.True(size.AllocatedBytes < 1 << 20, "a sparse file's holes were counted");
    }

    [Fact]
    public void Without_an_exclusion_the_workspace_inside_the_home_is_counted()
    {
        var size = Scan(excludeWorkspace: false);

        Assert.Equal(10, size.Entries);
        Assert.Equal(100 + 5000 + 10 + (16L << 20) + 20000, size.Bytes);
    }

    [Fact]
    public void What_an_existing_home_already_has_is_not_counted_but_its_directories_are_entered()
    {
        string existing = _dir.Create("existing");
        HomeFixture.Write(existing, "a", "the user's own");
        HomeFixture.Write(existing, "d/b", "the user's own");
        HomeFixture.Write(existing, "sparse/inside", "a directory where the image has a file: kept");
        HomeFixture.Write(existing, "s", "a file where the image has a symlink: kept");

        var size = Scan(existing: existing);

        // d (entered), h1, d/h2, p.
        Assert.Equal(4, size.Entries);
        Assert.Equal(10, size.Bytes);
    }

    [Fact]
    public void A_directory_in_the_image_where_the_home_has_a_file_is_kept_as_the_home_has_it()
    {
        string existing = _dir.Create("existing");
        HomeFixture.Write(existing, "d", "a file where the image has a directory");

        var size = Scan(existing: existing);

        Assert.Equal(5, size.Entries); // a, h1, s, p, sparse
        Assert.Equal(100 + 10 + (16L << 20), size.Bytes);
    }

    [Fact]
    public void The_existing_homes_directory_opened_beside_a_source_entry_is_closed_whatever_that_entry_turns_out_to_be()
    {
        // The existing home has a directory under each name; the source entry is then unreadable
        // (a2), a directory that cannot be opened (d), a file of unknown type (sparse), or the
        // workspace left out: each time the existing directory was opened first, and Scan's own
        // check finds no descriptor left open under the tree.
        HomeFixture.Check(Syscall.mkdir(Path.Join(Home, "a2"), FilePermissions.S_IRWXU));
        string existing = _dir.Create("existing");
        foreach (string name in new[] { "a2", "d", "sparse", "workspace" })
        {
            _dir.Create($"existing/{name}");
        }

        int lstats = 0, opens = 0;
        var posix = new FaultyPosix((call, name) =>
            (call == "lstatat" && name == "a2" && Interlocked.Increment(ref lstats) == 2) || (call == "openat" && name == "d" && Interlocked.Increment(ref opens) == 2) ? Errno.EACCES : null)
        {
            UnknownTypes = true,
        };

        var size = Scan(posix, existing);

        Assert.Equal((2, 2), (lstats, opens)); // each fault met the source side, after the existing one was opened
        Assert.Equal(5, size.Entries); // a, h1, s, p, sparse (a file in the image): a2 unreadable, d not opened, the workspace left out
    }

    [Fact]
    public void An_entry_that_cannot_be_looked_at_or_a_directory_that_cannot_be_opened_is_left_for_the_copy_to_report()
    {
        var posix = new FaultyPosix((call, name) => (call == "lstatat" && name == "a") || (call == "openat" && name == "d") ? Errno.EACCES : null);

        var size = Scan(posix);

        Assert.Equal(4, size.Entries); // h1, s, p, sparse: d/h2 lies in the directory not opened
        Assert.Equal(10 + (16L << 20), size.Bytes);
    }

    [Fact]
    public void A_stop_request_ends_the_scan_and_closes_what_it_opened()
    {
        using var stop = new CancellationTokenSource();
        stop.Cancel();

        Assert.Throws<OperationCanceledException>(() => Scan(stop: stop.Token));
    }
}
