using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>The runtime directory, where secrets go and what sessions read back: used only when it is the agent's user's alone.</summary>
public sealed class RuntimeDirectoryTests : IDisposable
{
    private readonly TempDirectory _dir = new("runtime");

    public void Dispose() => _dir.Dispose();

    private static (uint Uid, FilePermissions Mode) Look(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return (stat.st_uid, stat.st_mode & FilePermissions.ALLPERMS);
    }

    [Fact]
    public void A_missing_directory_is_made_private_and_then_used()
    {
        string runtime = _dir["run/packet-agent"];
        Directory.CreateDirectory(_dir["run"]);
        var posix = new FaultyPosix();

        Assert.NotNull(RuntimeDirectory.Refusal(posix, runtime));
        Assert.Null(RuntimeDirectory.Ensure(posix, runtime));

        Assert.Equal((Syscall.geteuid(), FilePermissions.S_IRWXU), Look(runtime));
        Assert.Null(RuntimeDirectory.Refusal(posix, runtime));
    }

    [Fact]
    public void A_sticky_run_open_to_all_is_a_parent_it_may_be_made_in()
    {
        string run = _dir.Create("run");
        HomeFixture.Check(Syscall.chmod(run, FilePermissions.ACCESSPERMS | FilePermissions.S_ISVTX));

        Assert.Null(RuntimeDirectory.Ensure(new FaultyPosix(), Path.Join(run, "packet-agent")));
    }

    [Fact]
    public void A_parent_others_may_write_is_not_made_in()
    {
        string open = _dir.Create("open");
        HomeFixture.Check(Syscall.chmod(open, FilePermissions.ACCESSPERMS));
        string runtime = Path.Join(open, "packet-agent");

        Assert.Equal($"the runtime directory {runtime} cannot be made safely: {open} is writable by everyone (mode 0777)", RuntimeDirectory.Ensure(new FaultyPosix(), runtime));
        Assert.False(Directory.Exists(runtime));
    }

    [Fact]
    public void An_own_directory_others_may_only_read_is_read_and_made_private_before_a_secret_goes_in()
    {
        string runtime = _dir.Create("packet-agent");
        HomeFixture.Check(Syscall.chmod(runtime, FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH));
        var posix = new FaultyPosix();

        Assert.Null(RuntimeDirectory.Refusal(posix, runtime));
        Assert.Null(RuntimeDirectory.Ensure(posix, runtime));
        Assert.Equal(FilePermissions.S_IRWXU, Look(runtime).Mode);
    }

    [Fact]
    public void An_own_directory_others_may_write_is_refused_and_left_as_it_is()
    {
        string runtime = _dir.Create("packet-agent");
        HomeFixture.Check(Syscall.chmod(runtime, FilePermissions.ACCESSPERMS));

        Assert.Equal($"the runtime directory {runtime} is not safe to use: {runtime} is writable by everyone (mode 0777)", RuntimeDirectory.Ensure(new FaultyPosix(), runtime));
        Assert.Equal(FilePermissions.ACCESSPERMS, Look(runtime).Mode);
    }

    [Fact]
    public void An_own_directory_others_may_read_that_cannot_be_made_private_is_read_but_gets_no_secret()
    {
        string runtime = _dir.Create("packet-agent");
        HomeFixture.Check(Syscall.chmod(runtime, FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP | FilePermissions.S_IROTH | FilePermissions.S_IXOTH));
        var keepsNoModes = new FaultyPosix((call, _) => call == "fchmod" ? Errno.EPERM : null);

        Assert.Null(RuntimeDirectory.Refusal(keepsNoModes, runtime));
        Assert.Equal($"the runtime directory {runtime} is mode 0755: others may look into it, so nothing in it is used (it must be 0700)", RuntimeDirectory.Ensure(keepsNoModes, runtime));
    }

    [Fact]
    public void An_own_directory_its_group_may_write_is_refused_for_reading_too()
    {
        string runtime = _dir.Create("packet-agent");
        HomeFixture.Check(Syscall.chmod(runtime, FilePermissions.S_IRWXU | FilePermissions.S_IRWXG));
        HomeFixture.Check(Syscall.lstat(runtime, out var stat));

        Assert.Equal($"the runtime directory {runtime} is not safe to use: {runtime} is writable by its group (gid {stat.st_gid}) (mode 0770)", RuntimeDirectory.Refusal(new FaultyPosix(), runtime));
        Assert.Equal(FilePermissions.S_IRWXU | FilePermissions.S_IRWXG, Look(runtime).Mode);
    }

    [RootFact]
    public void A_directory_another_account_made_is_refused_whatever_its_mode_and_left_as_it_is()
    {
        Require.Root();
        string runtime = _dir.Create("packet-agent");
        HomeFixture.Check(Syscall.chmod(runtime, FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP));
        HomeFixture.Check(Syscall.chown(runtime, Platform.Nobody, Platform.Nobody));

        string expected = $"the runtime directory {runtime} belongs to uid {Platform.Nobody}, not to the agent's user (uid 0): another account made it, so nothing in it is used";
        Assert.Equal(expected, RuntimeDirectory.Refusal(new FaultyPosix(), runtime));
        Assert.Equal(expected, RuntimeDirectory.Ensure(new FaultyPosix(), runtime));
        Assert.Equal(FilePermissions.S_IRWXU | FilePermissions.S_IRGRP | FilePermissions.S_IXGRP, Look(runtime).Mode);
    }

    [Fact]
    public void A_directory_that_cannot_be_made_says_why()
    {
        File.WriteAllText(_dir["run"], string.Empty);

        Assert.Equal($"the runtime directory {_dir["run/packet-agent"]} cannot be made: Not a directory (ENOTDIR)", RuntimeDirectory.Ensure(new FaultyPosix(), _dir["run/packet-agent"]));
    }

    [Fact]
    public void A_link_in_place_of_the_directory_is_not_followed()
    {
        string elsewhere = _dir.Create("elsewhere");
        HomeFixture.Check(Syscall.chmod(elsewhere, FilePermissions.S_IRWXU));
        HomeFixture.Symlink(_dir.Path, elsewhere, "packet-agent");

        string? refused = RuntimeDirectory.Ensure(new FaultyPosix(), _dir["packet-agent"]);

        Assert.Equal($"the runtime directory {_dir["packet-agent"]} cannot be opened: Not a directory (ENOTDIR)", refused);
    }
}
