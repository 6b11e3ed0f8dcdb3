using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The rename that never replaces, on the real file system: with RENAME_NOREPLACE, and without it as
/// NFS and most FUSE volumes answer (EINVAL, rename(2)): link then unlink for files, look then
/// rename for folders and where hard links are refused (FAT's EPERM).
/// </summary>
public sealed class NoReplaceRenameTests : IDisposable
{
    private readonly TempDirectory _dir = new("rename");

    public void Dispose() => _dir.Dispose();

    private static Func<string, string?, Errno?> FlagsRefused(Func<string, string?, Errno?>? more = null) =>
        (call, name) => call == "renameat2" ? Errno.EINVAL : more?.Invoke(call, name);

    private int Move(string from, string to, FaultyPosix posix)
    {
        int dir = CopyHarness.Open(_dir.Path);
        try
        {
            return NoReplaceRename.Move(posix, dir, from, dir, to);
        }
        finally
        {
            Syscall.close(dir);
        }
    }

    private long Inode(string name) => new Mono.Unix.UnixFileInfo(_dir[name]).Inode;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_file_is_moved_whole_to_a_free_name(bool flagsRefused)
    {
        HomeFixture.Write(_dir.Path, "from", "data");
        long inode = Inode("from");
        var posix = new FaultyPosix(flagsRefused ? FlagsRefused() : null);

        Assert.Equal(0, Move("from", "to", posix));

        Assert.False(File.Exists(_dir["from"]));
        Assert.Equal(("data", inode), (File.ReadAllText(_dir["to"]), Inode("to")));
        Assert.Equal(flagsRefused ? 1 : 0, posix.CallsOf("linkat"));
    }

    [Theory]
    [InlineData(false, "file")]
    [InlineData(true, "file")]
    [InlineData(false, "dir")]
    [InlineData(true, "dir")]
    public void Nothing_already_at_the_new_name_is_replaced(bool flagsRefused, string kind)
    {
        HomeFixture.Write(_dir.Path, kind == "file" ? "from" : "from/inner", "new");
        HomeFixture.Write(_dir.Path, kind == "file" ? "to" : "to/theirs", "theirs");

        Assert.Equal(-(int)Errno.EEXIST, Move("from", "to", new FaultyPosix(flagsRefused ? FlagsRefused() : null)));

        Assert.True(Path.Exists(_dir["from"]));
        Assert.Equal("theirs", File.ReadAllText(_dir[kind == "file" ? "to" : "to/theirs"]));
    }

    [Fact]
    public void Without_the_flag_a_folder_is_looked_for_then_renamed_never_linked()
    {
        HomeFixture.Write(_dir.Path, "from/inner", "data");
        var posix = new FaultyPosix(FlagsRefused());

        Assert.Equal(0, Move("from", "to", posix));

        Assert.Equal("data", File.ReadAllText(_dir["to/inner"]));
        Assert.Equal((0, 1), (posix.CallsOf("linkat"), posix.CallsOf("renameat")));
    }

    [Fact]
    public void Without_the_flag_or_hard_links_a_file_is_looked_for_then_renamed()
    {
        HomeFixture.Write(_dir.Path, "from", "data");
        HomeFixture.Write(_dir.Path, "taken", "theirs");
        var posix = new FaultyPosix(FlagsRefused((call, _) => call == "linkat" ? Errno.EPERM : null));

        Assert.Equal(0, Move("from", "to", posix));
        HomeFixture.Write(_dir.Path, "from", "again");
        Assert.Equal(-(int)Errno.EEXIST, Move("from", "taken", posix));

        Assert.Equal(("data", "theirs"), (File.ReadAllText(_dir["to"]), File.ReadAllText(_dir["taken"])));
    }

    [Fact]
    public void Without_the_flag_a_missing_entry_is_ENOENT()
    {
        Assert.Equal(-(int)Errno.ENOENT, Move("absent", "to", new FaultyPosix(FlagsRefused())));
    }

    [Fact]
    public void Without_the_flag_an_entry_that_cannot_be_looked_at_is_not_moved()
    {
        HomeFixture.Write(_dir.Path, "from", "data");

        Assert.Equal(-(int)Errno.EACCES, Move("from", "to", new FaultyPosix(FlagsRefused((call, name) => call == "lstatat" && name == "from" ? Errno.EACCES : null))));

        Assert.Equal((true, false), (File.Exists(_dir["from"]), Path.Exists(_dir["to"])));
    }

    [Fact]
    public void Without_the_flag_a_new_name_that_cannot_be_looked_at_is_not_renamed_over()
    {
        _dir.Create("from");
        var posix = new FaultyPosix(FlagsRefused((call, name) => call == "lstatat" && name == "to" ? Errno.EACCES : null));

        Assert.Equal(-(int)Errno.EACCES, Move("from", "to", posix));

        Assert.True(Directory.Exists(_dir["from"]));
        Assert.Equal(0, posix.CallsOf("renameat"));
    }

    [Fact]
    public void Another_failure_of_the_flagged_rename_is_returned_as_it_is()
    {
        HomeFixture.Write(_dir.Path, "from", "data");
        var posix = new FaultyPosix((call, _) => call == "renameat2" ? Errno.EXDEV : null);

        Assert.Equal(-(int)Errno.EXDEV, Move("from", "to", posix));

        Assert.Equal((0, 0), (posix.CallsOf("linkat"), posix.CallsOf("lstatat")));
    }
}
