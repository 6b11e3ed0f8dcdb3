using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>A user-writable volume and a root agent: planted symlinks must never redirect a read or a write.</summary>
public sealed class SafetyTests : IDisposable
{
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void A_home_that_is_a_symlink_out_of_the_workspace_is_refused()
    {
        HomeFixture.Write(_scratch.Home, "secret", "image data");
        string outside = _scratch.Create("outside");
        File.CreateSymbolicLink(_scratch.PersistedHome, outside);

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
        Assert.Contains(result.ErrorLines, line => line.Contains("warn: seed[2] refusing", StringComparison.Ordinal) && line.Contains("it is a symlink", StringComparison.Ordinal));
    }

    [Fact]
    public void A_bashrc_that_is_a_symlink_is_neither_read_nor_written()
    {
        HomeFixture.Write(_scratch.PersistedHome, ".packet-init", string.Empty);
        string outside = _scratch["outside-profile"];
        File.WriteAllText(outside, "root's own file\n");
        File.CreateSymbolicLink(Path.Join(_scratch.PersistedHome, ".bashrc"), outside);

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("root's own file\n", File.ReadAllText(outside));
        Assert.Contains(result.ErrorLines, line => line.Contains("warn: profile[4] refusing", StringComparison.Ordinal) && line.Contains(".bashrc", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("bin")]
    [InlineData(".packet")]
    public void A_workspace_directory_replaced_by_a_symlink_is_refused(string name)
    {
        HomeFixture.Write(_scratch.Home, "file", "x");
        if (name == "bin")
        {
            HomeFixture.Write(_scratch.PersistedHome, ".packet-init", string.Empty);
        }

        string outside = _scratch.Create("outside");
        File.CreateSymbolicLink(Path.Join(_scratch.Workspace, name), outside);

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
        if (name == ".packet" && Platform.IsRoot)
        {
            // Root's own part of the volume: moved aside (never followed) and made anew.
            Assert.Contains(result.ErrorLines, line => line.Contains($"info: guard[1] workspace {_scratch.Workspace} is present; moved {_scratch.Workspace}/.packet aside (it is a symlink, not a directory); made {_scratch.Workspace}/.packet (root's)", StringComparison.Ordinal));
            Assert.Equal(outside, new DirectoryInfo(Directory.GetDirectories(_scratch.Workspace, ".packet.untrusted-*").Single()).LinkTarget);
            Assert.True(File.Exists(Path.Join(_scratch.PersistedHome, ".packet-init")));
        }
        else
        {
            Assert.Contains(result.ErrorLines, line => line.Contains("refusing", StringComparison.Ordinal) && line.Contains($"/{name}: it is a symlink", StringComparison.Ordinal));
        }
    }

    [RootFact]
    public void A_non_root_agent_skips_and_names_what_it_cannot_read_and_seeds_the_rest()
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, ".bashrc", "mine\n");
        HomeFixture.Write(_scratch.Home, "notes/readable.txt", "ok");
        HomeFixture.Write(_scratch.Home, "notes/root-only.txt", "secret", mode: "600");
        HomeFixture.Write(_scratch.Home, "root-dir/inside.txt", "secret");
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.Nobody}:{Platform.Nobody}", _scratch.Home, _scratch.Workspace);
        ChildProcess.MustSucceed("chown", "0:0", Path.Join(_scratch.Home, "notes/root-only.txt"));
        ChildProcess.MustSucceed("chown", "-R", "0:0", Path.Join(_scratch.Home, "root-dir"));
        ChildProcess.MustSucceed("chmod", "700", Path.Join(_scratch.Home, "root-dir"));

        var result = ChildProcess.Run("setpriv", [
            $"--reuid={Platform.Nobody}", $"--regid={Platform.Nobody}", "--clear-groups", "--",
            RepositoryPaths.AgentBinary, "boot", "--workspace", _scratch.Workspace, "--home", _scratch.Home, "--gpu", "off"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(result.ErrorLines, line => line.Contains("warn: seed[2] left out notes/root-only.txt: open: Permission denied (EACCES)", StringComparison.Ordinal));
        Assert.Contains(result.ErrorLines, line => line.Contains("warn: seed[2] left out root-dir: open the directory: Permission denied (EACCES)", StringComparison.Ordinal));
        Assert.Contains("skipped 2 unreadable", result.StandardError);
        Assert.Equal("ok", File.ReadAllText(Path.Join(_scratch.PersistedHome, "notes/readable.txt")));
        Assert.False(File.Exists(Path.Join(_scratch.PersistedHome, "notes/root-only.txt")));
        Assert.True(File.Exists(Path.Join(_scratch.PersistedHome, ".packet-init")));
        Assert.Equal(Platform.Nobody, (uint)new Mono.Unix.UnixFileInfo(Path.Join(_scratch.PersistedHome, "notes/readable.txt")).OwnerUserId);
    }
}
