using System.Text;
using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Home;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// How the image manifest describes real entries (type, size, content hash through a descriptor),
/// and the fingerprint that tells an unversioned image apart by its first two levels.
/// </summary>
public sealed class ImageManifestTests : IDisposable
{
    private readonly TempDirectory _dir = new("manifest");

    public ImageManifestTests()
    {
        Home = _dir.Create("home");
        HomeFixture.Write(Home, "small", "hello\n");
        HomeFixture.Symlink(Home, "target/of the link", "link");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(Home, "pipe"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        HomeFixture.Write(Home, "dir/inner/deep", "deep\n");
        HomeFixture.Write(Home, "dir/shallow", "shallow\n");
        HomeFixture.WriteSparse(Home, "at-limit", size: ImageManifest.HashLimit, dataAt: [0]);
        HomeFixture.WriteSparse(Home, "over-limit", size: ImageManifest.HashLimit + 1, dataAt: [0]);
    }

    private string Home { get; }

    public void Dispose() => _dir.Dispose();

    private ManifestEntry Describe(string name, IPosix? posix = null)
    {
        HomeFixture.Check(Syscall.lstat(Path.Join(Home, name), out var stat));
        ManifestEntry entry;
        using (var home = DirectoryHandle.Open(new FaultyPosix(), Home))
        {
            entry = ImageManifest.Describe(posix ?? new FaultyPosix(), home.Fd, name, "path/" + name, stat);
            Assert.Equal([Home], OpenDescriptors.Under(_dir.Path));
        }

        Assert.Equal(stat.st_mtime, entry.MtimeSeconds);
        Assert.Equal(stat.st_mtime_nsec, entry.MtimeNanoseconds);
        Assert.Equal("path/" + name, entry.Path);
        return entry;
    }

    private string Fingerprint(IPosix? posix = null)
    {
        using var home = DirectoryHandle.Open(new FaultyPosix(), Home);
        string fingerprint = ImageManifest.Fingerprint(posix ?? new FaultyPosix(), home.Fd);
        Assert.Equal([Home], OpenDescriptors.Under(_dir.Path));
        return fingerprint;
    }

    [Fact]
    public void A_small_file_is_described_by_its_size_and_the_hash_of_its_content()
    {
        var entry = Describe("small");

        Assert.Equal((ManifestEntry.File, 6L, ContentHash.Of("hello\n"u8)), (entry.Type, entry.Size, entry.Hash));
    }

    [Fact]
    public void A_file_of_exactly_the_hash_limit_is_hashed_one_byte_more_is_not()
    {
        var atLimit = Describe("at-limit");
        var overLimit = Describe("over-limit");

        Assert.Equal(ContentHash.Of(File.ReadAllBytes(Path.Join(Home, "at-limit"))), atLimit.Hash);
        Assert.Equal((ImageManifest.HashLimit + 1, (string?)null), (overLimit.Size, overLimit.Hash));
    }

    [Fact]
    public void A_link_is_described_by_its_target_never_what_it_points_at()
    {
        var entry = Describe("link");

        Assert.Equal((ManifestEntry.Symlink, 0L, ContentHash.Of(Encoding.UTF8.GetBytes("target/of the link"))), (entry.Type, entry.Size, entry.Hash));
    }

    [Fact]
    public void A_directory_and_a_fifo_carry_their_type_alone()
    {
        var directory = Describe("dir");
        var fifo = Describe("pipe");

        Assert.Equal((ManifestEntry.Directory, 0L, (string?)null), (directory.Type, directory.Size, directory.Hash));
        Assert.Equal((ManifestEntry.Fifo, 0L, (string?)null), (fifo.Type, fifo.Size, fifo.Hash));
    }

    [Theory]
    [InlineData("openat")]
    [InlineData("pread")]
    public void A_file_that_cannot_be_read_has_no_hash_and_compares_by_size_and_time(string failing)
    {
        var entry = Describe("small", new FaultyPosix((call, _) => call == failing ? Errno.EIO : null));

        Assert.Equal((6L, (string?)null), (entry.Size, entry.Hash));
    }

    [Fact]
    public void The_fingerprint_is_the_same_for_the_same_home()
    {
        string first = Fingerprint();

        Assert.StartsWith("fingerprint:", first);
        Assert.Equal("fingerprint:".Length + 16, first.Length);
        Assert.Equal(first, Fingerprint());
    }

    [Fact]
    public void The_fingerprint_changes_with_an_entry_of_the_first_two_levels()
    {
        string before = Fingerprint();
        HomeFixture.Write(Home, "dir/shallow", "shallow, now longer\n");

        Assert.NotEqual(before, Fingerprint());
    }

    [Fact]
    public void The_fingerprint_does_not_look_below_the_second_level()
    {
        string before = Fingerprint();
        HomeFixture.Write(Home, "dir/inner/deep", "deep, now longer\n"); // the directories' times stay

        Assert.Equal(before, Fingerprint());
    }

    [Fact]
    public void The_fingerprint_does_not_follow_a_link_to_a_directory()
    {
        string outside = _dir.Create("outside");
        HomeFixture.Symlink(Home, outside, "linked-dir");
        string before = Fingerprint();
        HomeFixture.Write(outside, "file", "changes\n");

        Assert.Equal(before, Fingerprint());
    }

    [Fact]
    public void An_entry_gone_between_the_listing_and_its_stat_is_left_out()
    {
        string withoutIt = Fingerprint();
        HomeFixture.Write(Home, "vanishing", "here for the listing only\n");

        string vanished = Fingerprint(new FaultyPosix((call, name) => call == "lstatat" && name == "vanishing" ? Errno.ENOENT : null));

        Assert.Equal(withoutIt, vanished);
        Assert.NotEqual(withoutIt, Fingerprint());
    }

    [Fact]
    public void A_directory_that_cannot_be_opened_counts_by_its_own_entry_alone()
    {
        string before = Fingerprint(new FaultyPosix((call, name) => call == "openat" && name == "dir" ? Errno.EACCES : null));
        HomeFixture.Write(Home, "dir/shallow", "shallow, now longer\n");

        Assert.Equal(before, Fingerprint(new FaultyPosix((call, name) => call == "openat" && name == "dir" ? Errno.EACCES : null)));
    }

    [Fact]
    public void Names_are_listed_in_byte_order_whatever_order_the_directory_holds_them()
    {
        string directory = _dir.Create("names");
        string[] names = ["b", "A", "a", ".z", "_", "é", "B10", "B9", "~", "0"];
        foreach (string name in names)
        {
            HomeFixture.Write(directory, name, name);
        }

        using var handle = DirectoryHandle.Open(new FaultyPosix(), directory);
        var listed = ImageManifest.SortedNames(new DirectoryReader(new FaultyPosix()), handle.Fd);

        Assert.Equal(names.Order(StringComparer.Ordinal), listed);
    }
}
