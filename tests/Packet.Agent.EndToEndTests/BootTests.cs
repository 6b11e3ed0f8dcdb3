using Mono.Unix.Native;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

public sealed class BootTests : IDisposable
{
    private static string Block(string workspace) =>
        $"# >>> packet-persist >>>\n{PodPathLine}\n{PathLine(workspace + "/bin")}\n{Banner(workspace)}\n# <<< packet-persist <<<\n";

    private const string PodPathLine = "[ -n \"${PACKET_POD_PATH:-}\" ] && case \":$PATH:\" in *\":$PACKET_POD_PATH:\"*) ;; *) export PATH=\"$PACKET_POD_PATH:$PATH\" ;; esac";

    private static string PathLine(string directory) =>
        $"case \":$PATH:\" in *\":{directory}:\"*) ;; *) export PATH=\"{directory}:$PATH\" ;; esac";

    private static string Banner(string workspace) =>
        $"case $- in *i*) [ -s \"{workspace}/.packet/last-boot.warnings\" ] && printf 'packet-agent: %s; run: packet-agent status\\n' \"$(head -c 512 \"{workspace}/.packet/last-boot.warnings\" | cat -v)\" >&2;; esac";

    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    [Fact]
    public void A_first_boot_seeds_the_home_faithfully_then_marks_it_and_puts_bin_on_PATH()
    {
        HomeFixture.Build(_scratch.Home, rootOnlyEntries: Platform.IsRoot);
        var source = TreeSnapshot.Take(_scratch.Home);

        var result = _scratch.Boot();

        Assert.True(result.ExitCode == 0, result.ToString());
        var seeded = TreeSnapshot.Take(_scratch.PersistedHome);
        var notCopied = source.Entries.Values.Where(e => e.Type is FilePermissions.S_IFSOCK or FilePermissions.S_IFCHR).Select(e => e.Path).ToHashSet();
        Assert.Empty(seeded.DifferencesFrom(source, Ignore.RootTimes, path => !notCopied.Contains(path) && path is not (".bashrc" or ".packet-init")));
        string bashrc = File.ReadAllText(Path.Join(_scratch.PersistedHome, ".bashrc"));
        Assert.Equal("alias ll='ls -l'\n\n" + Block(_scratch.Workspace), bashrc);
        Assert.True(Directory.Exists(Path.Join(_scratch.Workspace, "bin")));
        using var marker = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Join(_scratch.PersistedHome, ".packet-init")));
        Assert.Equal("packet-agent", marker.RootElement.GetProperty("agent").GetString());
        Assert.Equal(_scratch.Home, marker.RootElement.GetProperty("source_home").GetString());
        Assert.Equal(1, marker.RootElement.GetProperty("skipped").GetProperty("sockets").GetInt32());
        Assert.Equal(2, marker.RootElement.GetProperty("copied").GetProperty("hard_links").GetInt32());
        Assert.Contains(result.ErrorLines, line => line.Contains("info: seed[2] copied", StringComparison.Ordinal) && line.Contains(" and flushed it to disk in ", StringComparison.Ordinal));
        using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Join(_scratch.Workspace, ".packet", "last-boot.json")));
        var seedCounts = report.RootElement.GetProperty("seed");
        Assert.True(seedCounts.GetProperty("flush_seconds").GetDouble() >= 0 && seedCounts.GetProperty("duration_seconds").GetDouble() > 0);
        Assert.Contains(result.ErrorLines, line => line.Contains("info: marker[3] wrote", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Join(_scratch.Workspace, ".packet", "staging", "home")), "staging must be gone once the home is published");
    }

    [Fact]
    public void Every_mode_is_copied_exactly_whatever_the_umask_the_agent_inherits()
    {
        HomeFixture.Write(_scratch.Home, "group-writable", "g+w\n", mode: "664");
        HomeFixture.Write(_scratch.Home, "world-writable", "o+w\n", mode: "666");
        HomeFixture.Write(_scratch.Home, "shared/tool", "#!/bin/sh\n", mode: "775");
        HomeFixture.Write(_scratch.Home, "plain", "644\n", mode: "644");
        HomeFixture.Chmod(_scratch.Home, "shared", "2775");
        HomeFixture.Check(Syscall.mkfifo(Path.Join(_scratch.Home, "pipe"), (FilePermissions)Convert.ToUInt32("666", 8)));
        HomeFixture.Chmod(_scratch.Home, "pipe", "666");
        HomeFixture.FixTimes(_scratch.Home);

        // A restrictive umask, as in hardened images: it applies to files the agent writes for itself, never to the copy.
        var result = ChildProcess.Run(
            "/bin/sh",
            ["-c", "umask 077 && exec \"$@\"", "sh", RepositoryPaths.AgentBinary, "boot", "--workspace", _scratch.Workspace, "--home", _scratch.Home, "--gpu", "off"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        var differences = TreeSnapshot.Take(_scratch.PersistedHome).DifferencesFrom(TreeSnapshot.Take(_scratch.Home), Ignore.RootTimes, path => path is not (".bashrc" or ".packet-init"));
        Assert.Empty(differences);
    }

    [Fact]
    public void Five_boots_leave_the_workspace_as_the_first_left_it()
    {
        HomeFixture.Write(_scratch.Home, ".bashrc", "export A=1\n");
        Assert.Equal(0, _scratch.Boot().ExitCode);
        string bashrc = Path.Join(_scratch.PersistedHome, ".bashrc");
        byte[] firstProfile = File.ReadAllBytes(bashrc);
        byte[] firstMarker = File.ReadAllBytes(Path.Join(_scratch.PersistedHome, ".packet-init"));
        var firstProfileStat = new FileInfo(bashrc).LastWriteTimeUtc;

        for (int i = 0; i < 4; i++)
        {
            var again = _scratch.Boot();
            Assert.Equal(0, again.ExitCode);
            Assert.Contains(again.ErrorLines, line => line.Contains("skipped: already seeded", StringComparison.Ordinal));
        }

        Assert.Equal(firstProfile, File.ReadAllBytes(bashrc));
        Assert.Equal(firstMarker, File.ReadAllBytes(Path.Join(_scratch.PersistedHome, ".packet-init")));
        Assert.Equal(firstProfileStat, new FileInfo(bashrc).LastWriteTimeUtc);
        Assert.Single(File.ReadAllLines(bashrc), line => line.Contains("/bin:$PATH", StringComparison.Ordinal));
    }

    [Fact]
    public void A_missing_workspace_is_a_warning_and_the_command_still_runs()
    {
        string missing = _scratch["no-such-volume"];

        var result = Agent.Run(["boot", "--workspace", missing, "--home", _scratch.Home, "--gpu", "off", "--", "sh", "-c", "echo command ran"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("command ran\n", result.StandardOutput);
        Assert.Contains(result.ErrorLines, line => line.Contains($"warn: guard[1] {missing} does not exist", StringComparison.Ordinal));
    }

    [Fact]
    public void Strict_makes_a_missing_workspace_fail_the_boot_and_says_why_in_the_termination_message()
    {
        string termination = _scratch["termination-log"];

        var result = Agent.Run(
            ["boot", "--workspace", _scratch["no-such-volume"], "--home", _scratch.Home, "--gpu", "off", "--strict", "--", "sh", "-c", "echo must not run"],
            new Dictionary<string, string?> { ["PACKET_TERMINATION_LOG"] = termination });

        Assert.Equal(1, result.ExitCode);
        Assert.Empty(result.StandardOutput);
        Assert.StartsWith("guard: ", File.ReadAllText(termination));
        Assert.Contains("does not exist", File.ReadAllText(termination));
        Assert.Contains(result.ErrorLines, line => line.Contains("fail: guard[1]", StringComparison.Ordinal) && line.Contains("(--strict)", StringComparison.Ordinal));
    }

    [Fact]
    public void Options_come_from_the_environment_and_a_flag_beats_its_variable()
    {
        HomeFixture.Write(_scratch.Home, "from-env-home", "x");
        var environment = new Dictionary<string, string?>
        {
            ["PACKET_WORKSPACE"] = _scratch["not-this-one"],
            ["PACKET_HOME"] = _scratch.Home,
            ["PACKET_GPU"] = "off",
        };

        var result = Agent.Run(["boot", "--workspace", _scratch.Workspace], environment);

        Assert.Equal(0, result.ExitCode);
        Assert.True(File.Exists(Path.Join(_scratch.PersistedHome, "from-env-home")));
        Assert.False(Directory.Exists(_scratch["not-this-one"]));
    }

    [Fact]
    public void A_workspace_made_by_the_bash_script_is_adopted_without_a_second_copy_or_PATH_entry()
    {
        HomeFixture.Write(_scratch.Home, "image-file", "from the image");
        HomeFixture.Write(_scratch.PersistedHome, ".packet-init", string.Empty);
        HomeFixture.Write(_scratch.PersistedHome, "users-file", "mine");
        HomeFixture.Write(_scratch.PersistedHome, ".bashrc", "alias x=y\n# packet-persist marker\nexport PATH=\"/workspace/bin:$PATH\"\n");

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        Assert.False(File.Exists(Path.Join(_scratch.PersistedHome, "image-file")), "an empty marker is a valid marker: no re-seed");
        Assert.Equal("mine", File.ReadAllText(Path.Join(_scratch.PersistedHome, "users-file")));
        var lines = File.ReadAllLines(Path.Join(_scratch.PersistedHome, ".bashrc"));
        Assert.Equal(["alias x=y", "# >>> packet-persist >>>", PodPathLine, PathLine($"{_scratch.Workspace}/bin"), Banner(_scratch.Workspace), "# <<< packet-persist <<<"], lines);
    }

    [Fact]
    public void Deleting_the_marker_reseeds_what_is_missing_and_keeps_the_users_changes()
    {
        HomeFixture.Write(_scratch.Home, ".bashrc", "image bashrc\n");
        HomeFixture.Write(_scratch.Home, "deleted-by-user", "restore me");
        Assert.Equal(0, _scratch.Boot().ExitCode);
        File.WriteAllText(Path.Join(_scratch.PersistedHome, ".bashrc"), "user bashrc\n");
        File.Delete(Path.Join(_scratch.PersistedHome, "deleted-by-user"));
        File.Delete(Path.Join(_scratch.PersistedHome, ".packet-init"));

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("restore me", File.ReadAllText(Path.Join(_scratch.PersistedHome, "deleted-by-user")));
        Assert.StartsWith("user bashrc\n", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".bashrc")));
        Assert.True(File.Exists(Path.Join(_scratch.PersistedHome, ".packet-init")));
        Assert.Contains(result.ErrorLines, line => line.Contains("already exists without a marker", StringComparison.Ordinal));
    }
}
