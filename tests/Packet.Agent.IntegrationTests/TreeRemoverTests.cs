using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>Removing a staging tree the agent made, on the real file system: all of it, never through a link.</summary>
public sealed class TreeRemoverTests : IDisposable
{
    private readonly TempDirectory _dir = new("remover");

    public void Dispose() => _dir.Dispose();

    private int Remove(string name, FaultyPosix? posix = null)
    {
        int parent = CopyHarness.Open(_dir.Path);
        try
        {
            return TreeRemover.RemoveChild(posix ?? new FaultyPosix(), parent, name);
        }
        finally
        {
            Syscall.close(parent);
            Assert.Empty(OpenDescriptors.Under(_dir.Path));
        }
    }

    [Fact]
    public void A_whole_tree_goes_read_only_directories_fifos_and_links_included_and_no_link_is_followed()
    {
        string outside = _dir.Create("outside");
        HomeFixture.Write(outside, "kept", "not ours\n");
        string staging = _dir.Create("staging");
        HomeFixture.Write(staging, "a/b/c/file", "x\n");
        HomeFixture.Write(staging, "top", "y\n");
        HomeFixture.Symlink(staging, outside, "a/link-to-outside");
        HomeFixture.Symlink(staging, "missing", "dangling");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(staging, "a/pipe"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));
        HomeFixture.Chmod(staging, "a/b/c", "555");
        HomeFixture.Chmod(staging, "a", "555");

        Assert.Equal(0, Remove("staging"));

        Assert.False(Path.Exists(staging));
        Assert.Equal(["kept"], Directory.GetFileSystemEntries(outside).Select(Path.GetFileName));
    }

    [Fact]
    public void Each_file_costs_one_unlink()
    {
        string staging = _dir.Create("staging");
        HomeFixture.Write(staging, "one", "1\n");
        HomeFixture.Write(staging, "two", "2\n");
        var posix = new FaultyPosix();

        Assert.Equal(0, Remove("staging", posix));

        Assert.Equal(4, posix.CallsOf("unlinkat")); // rmdir refused (not empty), two unlinks, rmdir
    }

    [Fact]
    public void A_file_or_a_link_of_that_name_is_removed_itself()
    {
        HomeFixture.Write(_dir.Path, "file", "f\n");
        HomeFixture.Symlink(_dir.Path, _dir.Create("target-dir"), "link");

        Assert.Equal((0, 0), (Remove("file"), Remove("link")));

        Assert.False(Path.Exists(_dir["file"]) || Path.Exists(_dir["link"]));
        Assert.True(Directory.Exists(_dir["target-dir"]));
    }

    [Fact]
    public void Nothing_of_that_name_is_ENOENT()
    {
        Assert.Equal(-(int)Errno.ENOENT, Remove("absent"));
    }

    [Fact]
    public void An_entry_gone_meanwhile_is_no_failure()
    {
        string staging = _dir.Create("staging");
        HomeFixture.Write(staging, "vanishing", "v\n");
        HomeFixture.Write(staging, "other", "o\n");

        // Another process removes it just before the agent does.
        var posix = new FaultyPosix((call, name) =>
        {
            if (call != "unlinkat" || name != "vanishing")
            {
                return null;
            }

            File.Delete(Path.Join(staging, "vanishing"));
            return Errno.ENOENT;
        });

        Assert.Equal(0, Remove("staging", posix));

        Assert.False(Path.Exists(staging));
    }

    [Theory]
    [InlineData("unlinkat", "stuck", Errno.EBUSY)]
    [InlineData("openat", "staging", Errno.EACCES)]
    [InlineData("getdents", null, Errno.EIO)]
    public void A_failure_inside_the_tree_is_returned_and_what_is_left_stays(string call, string? name, Errno errno)
    {
        string staging = _dir.Create("staging");
        HomeFixture.Write(staging, "stuck", "s\n");

        int result = Remove("staging", new FaultyPosix((made, named) => made == call && (name is null || named == name) ? errno : null));

        Assert.Equal(-(int)errno, result);
        Assert.True(Directory.Exists(staging));
    }

    [Fact]
    public void A_directory_that_cannot_be_removed_for_another_reason_than_its_contents_is_returned_at_once()
    {
        _dir.Create("staging");
        var posix = new FaultyPosix((call, name) => call == "unlinkat" && name == "staging" ? Errno.EROFS : null);

        Assert.Equal(-(int)Errno.EROFS, Remove("staging", posix));

        Assert.Equal((1, 0), (posix.CallsOf("unlinkat"), posix.CallsOf("openat")));
    }
}
