using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// The one check of what the agent may trust, on a real file system: each folder from / down, links
/// where they sit, sticky folders, the agent's own user and group, and whole trees (a venv).
/// The test's own tree hangs below /tmp, sticky and writable by all: each test relies on the rule
/// that lets root pass there toward an entry root owns.
/// </summary>
public sealed class SafePathTests : IDisposable
{
    private static readonly TrustedOwners Root = new(0, 0);
    private readonly TempDirectory _dir = new("safe-path");

    public void Dispose() => _dir.Dispose();

    private static string? Refusal(string path, TrustedOwners? owners = null) => SafePath.Refusal(new FaultyPosix(), path, owners ?? Root);

    private static void Chmod(string path, string mode) => HomeFixture.Check(Syscall.chmod(path, (FilePermissions)Convert.ToUInt32(mode, 8)));

    private static void Chown(string path, uint uid, uint gid) => HomeFixture.Check(Syscall.lchown(path, uid, gid));

    [RootFact]
    public void A_program_root_alone_can_change_all_the_way_down_is_trusted()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "image/bin/tool", "#!/bin/sh\n", mode: "755");

        Assert.Null(Refusal(_dir["image/bin/tool"]));
        Assert.Null(Refusal("/usr/bin/env"));
    }

    [RootFact]
    public void A_folder_its_group_may_write_is_refused_by_name_and_mode()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "vol/bin/tool", "#!/bin/sh\n", mode: "755");
        Chown(_dir["vol"], 0, 1000);
        Chmod(_dir["vol"], "2775");

        Assert.Equal($"{_dir["vol"]} is writable by its group (gid 1000) (mode 2775), who could put anything there", Refusal(_dir["vol/bin/tool"]));
    }

    [RootFact]
    public void A_program_others_may_write_or_another_account_owns_is_refused()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "bin/open", "#!/bin/sh\n", mode: "777");
        HomeFixture.Write(_dir.Path, "bin/theirs", "#!/bin/sh\n", mode: "755");
        Chown(_dir["bin/theirs"], 1000, 1000);

        Assert.Equal($"{_dir["bin/open"]} is writable by everyone (mode 0777)", Refusal(_dir["bin/open"]));
        Assert.Equal($"{_dir["bin/theirs"]} belongs to uid 1000, not root", Refusal(_dir["bin/theirs"]));
    }

    [RootFact]
    public void A_folder_on_the_way_that_another_account_owns_is_refused_even_when_no_one_else_may_write_it()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "theirs/bin/tool", "#!/bin/sh\n", mode: "755");
        Chown(_dir["theirs"], 1000, 1000);

        Assert.Equal($"{_dir["theirs"]} belongs to uid 1000, not root", Refusal(_dir["theirs/bin/tool"]));
    }

    [RootFact]
    public void A_sticky_folder_open_to_all_is_passed_only_toward_what_root_owns()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "tmp/mine/tool", "#!/bin/sh\n", mode: "755");
        HomeFixture.Write(_dir.Path, "tmp/theirs/tool", "#!/bin/sh\n", mode: "755");
        HomeFixture.Write(_dir.Path, "open/mine/tool", "#!/bin/sh\n", mode: "755");
        Chmod(_dir["tmp"], "1777");
        Chmod(_dir["open"], "0777");
        Chown(_dir["tmp/theirs"], 1000, 1000);

        Assert.Null(Refusal(_dir["tmp/mine/tool"]));
        Assert.Equal($"{_dir["tmp"]} is writable by everyone (mode 1777), who could put anything there", Refusal(_dir["tmp/theirs/tool"]));
        Assert.Equal($"{_dir["open"]} is writable by everyone (mode 0777), who could put anything there", Refusal(_dir["open/mine/tool"]));
        Assert.Null(SafePath.RefusalToCreateIn(new FaultyPosix(), _dir["tmp"], Root));
        Assert.NotNull(SafePath.RefusalToCreateIn(new FaultyPosix(), _dir["open"], Root));
        Assert.Equal($"{_dir["tmp"]} is writable by everyone (mode 1777)", Refusal(_dir["tmp"]));
    }

    [RootFact]
    public void Links_are_followed_where_root_owns_the_folder_they_sit_in_and_their_targets_checked_in_turn()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "real/tool", "#!/bin/sh\n", mode: "755");
        HomeFixture.Write(_dir.Path, "users/tool", "#!/bin/sh\n", mode: "755");
        Chown(_dir["users"], 1000, 1000);
        HomeFixture.Symlink(_dir.Path, _dir["real/tool"], "absolute");
        HomeFixture.Symlink(_dir.Path, "real/tool", "relative");
        HomeFixture.Symlink(_dir.Path, "real/../real/tool", "dotted");
        HomeFixture.Symlink(_dir.Path, _dir["users/tool"], "into-users");
        Directory.CreateDirectory(_dir["tmp"]);
        Chmod(_dir["tmp"], "1777");
        HomeFixture.Symlink(_dir["tmp"], _dir["real/tool"], "planted");
        Chown(_dir["tmp/planted"], 1000, 1000);

        Assert.Null(Refusal(_dir["absolute"]));
        Assert.Null(Refusal(_dir["relative"]));
        Assert.Null(Refusal(_dir["dotted"]));
        Assert.Equal($"{_dir["users"]} belongs to uid 1000, not root", Refusal(_dir["into-users"]));
        Assert.Equal($"{_dir["tmp"]} is writable by everyone (mode 1777), who could put anything there", Refusal(_dir["tmp/planted"]));
    }

    [Fact]
    public void A_loop_of_links_a_missing_entry_a_file_on_the_way_and_a_relative_path_are_refused_with_why()
    {
        HomeFixture.Symlink(_dir.Path, "b", "a");
        HomeFixture.Symlink(_dir.Path, "a", "b");
        HomeFixture.Write(_dir.Path, "file", "x");
        var owners = TrustedOwners.Of(new FaultyPosix());

        Assert.Equal($"{_dir["a"]} leads through more than 40 symlinks", SafePath.Refusal(new FaultyPosix(), _dir["a"], owners));
        Assert.Equal($"{_dir["missing"]} cannot be looked at: No such file or directory (ENOENT)", SafePath.Refusal(new FaultyPosix(), _dir["missing/tool"], owners));
        Assert.Equal($"{_dir["file"]} is not a directory", SafePath.Refusal(new FaultyPosix(), _dir["file/tool"], owners));
        Assert.Equal("bin/tool is not an absolute path", SafePath.Refusal(new FaultyPosix(), "bin/tool", owners));
    }

    [RootFact]
    public void An_agent_that_is_not_root_trusts_itself_and_its_own_groups_write_but_no_other_account()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "home/bin/tool", "#!/bin/sh\n", mode: "775");
        HomeFixture.Write(_dir.Path, "home/bin/shared", "#!/bin/sh\n", mode: "775");
        ChildProcess.MustSucceed("chown", "-R", "1000:1000", _dir["home"]);
        Chown(_dir["home/bin/shared"], 1000, 2000);
        var user = new TrustedOwners(1000, 1000);

        Assert.Null(Refusal(_dir["home/bin/tool"], user));
        Assert.Equal($"{_dir["home/bin/shared"]} is writable by its group (gid 2000) (mode 0775)", Refusal(_dir["home/bin/shared"], user));
        Assert.Equal($"{_dir["home"]} belongs to uid 1000, not root", Refusal(_dir["home/bin/tool"]));
        Assert.Equal("root or uid 1000", user.ToString());
        Assert.False(Root.TrustsGroup(0));
    }

    [RootFact]
    public void A_tree_is_trusted_only_when_every_entry_in_it_is()
    {
        Require.Root();
        HomeFixture.Write(_dir.Path, "venv/lib/site-packages/ok.py", "x = 1\n");
        HomeFixture.Write(_dir.Path, "venv/bin/python", "#!/bin/sh\n", mode: "755");
        HomeFixture.Symlink(_dir["venv/bin"], "python", "python3");
        var posix = new FaultyPosix();
        Assert.Null(SafePath.RefusalBelow(posix, _dir["venv"], Root));

        HomeFixture.Write(_dir.Path, "venv/lib/site-packages/deep/hook.pth", "import os\n", mode: "664");
        Assert.Equal($"{_dir["venv/lib/site-packages/deep/hook.pth"]} is writable by its group (gid 0) (mode 0664)", SafePath.RefusalBelow(posix, _dir["venv"], Root));

        File.Delete(_dir["venv/lib/site-packages/deep/hook.pth"]);
        HomeFixture.Symlink(_dir["venv/lib"], "/etc", "theirs");
        Chown(_dir["venv/lib/theirs"], 1000, 1000);
        Assert.Equal($"{_dir["venv/lib/theirs"]} belongs to uid 1000, not root", SafePath.RefusalBelow(posix, _dir["venv"], Root));
        Assert.Equal($"{_dir["nothing"]} cannot be looked at: No such file or directory (ENOENT)", SafePath.RefusalBelow(posix, _dir["nothing"], Root));

        // A venv that is a link root made, to a tree root alone may change, is looked through.
        File.Delete(_dir["venv/lib/theirs"]);
        HomeFixture.Symlink(_dir.Path, "venv", "venv-link");
        Assert.Null(SafePath.RefusalBelow(posix, _dir["venv-link"], Root));
    }
}
