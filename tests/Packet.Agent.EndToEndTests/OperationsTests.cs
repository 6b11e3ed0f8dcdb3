using System.Diagnostics;
using System.Text.Json;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>What operators reach for: the boot report and banner, status, reset-home, the dry run, image upgrades.</summary>
public sealed class OperationsTests : IDisposable
{
    private readonly Scratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private string State => Path.Join(_scratch.Workspace, ".packet");

    private ChildResult InteractiveShell() => ChildProcess.Run(
        "bash",
        ["-ic", "true"],
        new Dictionary<string, string?> { ["HOME"] = _scratch.PersistedHome, ["PS1"] = "$ " });

    [Fact]
    public void Every_boot_leaves_a_report_and_the_previous_three_are_kept()
    {
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(0, _scratch.Boot().ExitCode);
        }

        using var report = JsonDocument.Parse(File.ReadAllText(Path.Join(State, "last-boot.json")));
        var root = report.RootElement;
        Assert.Equal("ok", root.GetProperty("outcome").GetString());
        Assert.Equal(["guard", "seed", "marker", "profile", "gpu", "hooks", "ssh"], root.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()));
        Assert.True(File.Exists(Path.Join(State, "last-boot.3.json")));
        Assert.False(File.Exists(Path.Join(State, "last-boot.4.json")));
        using var first = JsonDocument.Parse(File.ReadAllText(Path.Join(State, "last-boot.3.json")));
        Assert.True(first.RootElement.GetProperty("started_at").GetDateTimeOffset() < root.GetProperty("started_at").GetDateTimeOffset());
    }

    [Fact]
    public void An_interactive_shell_points_to_status_after_a_boot_with_warnings_and_is_silent_otherwise()
    {
        _scratch.Script("workspace/setup.sh", "exit 3");
        Assert.Equal(0, _scratch.Boot().ExitCode);

        var warned = InteractiveShell();
        File.Delete(Path.Join(_scratch.Workspace, "setup.sh"));
        Assert.Equal(0, _scratch.Boot().ExitCode);
        var clean = InteractiveShell();
        var script = ChildProcess.Run("bash", ["-c", ". ~/.bashrc"], new Dictionary<string, string?> { ["HOME"] = _scratch.PersistedHome });

        Assert.Contains("packet-agent: the last boot", warned.StandardError);
        Assert.Contains("had 1 warning; run: packet-agent status", warned.StandardError);
        Assert.DoesNotContain("packet-agent", clean.StandardError);
        Assert.Equal(string.Empty, script.StandardError);
    }

    [Fact]
    public void Status_on_a_garbage_report_says_it_cannot_be_read()
    {
        Assert.Equal(0, _scratch.Boot().ExitCode);
        File.WriteAllText(Path.Join(State, "last-boot.json"), "{\"agent\": \"packet-ag");

        var status = Agent.Run(["status", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);

        Assert.Equal(1, status.ExitCode);
        Assert.Contains($"last boot  report unreadable: {Path.Join(State, "last-boot.json")} is not a boot report", status.StandardOutput);
        Assert.DoesNotContain("has not booted", status.StandardOutput);
    }

    [Fact]
    public void A_hostile_warnings_file_cannot_send_control_characters_to_a_terminal()
    {
        Assert.Equal(0, _scratch.Boot().ExitCode);
        File.WriteAllText(Path.Join(State, "last-boot.warnings"), "x\u001b]0;pwned\u0007\u001b[2J\\c\rend\n");

        var shell = InteractiveShell();

        Assert.Contains("packet-agent: x^[]0;pwned^G^[[2J\\c^Mend", shell.StandardError);
        Assert.DoesNotContain(shell.StandardError, c => char.IsControl(c) && c != '\n');
    }

    [Fact]
    public void Status_reads_at_a_glance_and_says_what_needs_attention()
    {
        HomeFixture.Write(_scratch.Home, ".bashrc", "x\n");
        Assert.Equal(0, _scratch.Boot().ExitCode);

        var text = Agent.Run(["status", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);
        var json = Agent.Run(["status", "--json", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);

        Assert.Equal(1, text.ExitCode);
        Assert.Contains($"workspace  {_scratch.Workspace}: not a mount point", text.StandardOutput);
        Assert.Contains("by packet-agent 0.1.0", text.StandardOutput);
        Assert.Contains("profile    workspace block present", text.StandardOutput);
        Assert.Contains("last boot", text.StandardOutput);
        Assert.Contains("attention  - ", text.StandardOutput);
        using var document = JsonDocument.Parse(json.StandardOutput);
        Assert.True(document.RootElement.GetProperty("home").GetProperty("seeded").GetBoolean());
        Assert.Equal("ok", document.RootElement.GetProperty("last_boot").GetProperty("outcome").GetString());
    }

    [Fact]
    public void Reset_home_moves_the_home_aside_never_deleting_it_and_seeds_a_fresh_one()
    {
        HomeFixture.Write(_scratch.Home, ".bashrc", "image\n");
        Assert.Equal(0, _scratch.Boot().ExitCode);
        File.WriteAllText(Path.Join(_scratch.PersistedHome, "mine.txt"), "user data");

        var result = Agent.Run(["reset-home", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);

        Assert.True(result.ExitCode == 0, result.ToString());
        string backup = Assert.Single(Directory.GetDirectories(_scratch.Workspace, "home.bak-*"));
        Assert.Contains($"moved {_scratch.PersistedHome} to {backup}", result.StandardOutput);
        Assert.Equal("user data", File.ReadAllText(Path.Join(backup, "mine.txt")));
        Assert.False(File.Exists(Path.Join(_scratch.PersistedHome, "mine.txt")));
        Assert.True(File.Exists(Path.Join(_scratch.PersistedHome, ".packet-init")));
    }

    [Fact]
    public void Reset_home_at_next_boot_only_moves_the_home_and_the_next_boot_seeds()
    {
        Assert.Equal(0, _scratch.Boot().ExitCode);

        var reset = Agent.Run(["reset-home", "--at-next-boot", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);

        Assert.Equal(0, reset.ExitCode);
        Assert.Contains("the next boot seeds a fresh home", reset.StandardOutput);
        Assert.False(Directory.Exists(_scratch.PersistedHome));
        Assert.Contains("info: seed[2] copied", _scratch.Boot().StandardError);
    }

    [Fact]
    public void Reset_home_refuses_while_another_agent_holds_the_lock()
    {
        Assert.Equal(0, _scratch.Boot().ExitCode);
        using var holder = Process.Start("flock", [Path.Join(State, "lock"), "sleep", "30"])!;
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (ChildProcess.Run("flock", ["-n", Path.Join(State, "lock"), "true"]).ExitCode == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "flock did not take the lock");
            Thread.Sleep(20);
        }

        try
        {
            var result = Agent.Run(["reset-home", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);

            Assert.Equal(1, result.ExitCode);
            Assert.Contains("another agent holds", result.StandardOutput);
            Assert.True(Directory.Exists(_scratch.PersistedHome));
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_dry_run_prints_the_plan_and_changes_nothing_at_all(bool seededAlready)
    {
        HomeFixture.Build(_scratch.Home, rootOnlyEntries: false);
        _scratch.Script("workspace/setup.sh", "touch must-not-exist");
        File.WriteAllText(Path.Join(_scratch.Workspace, "requirements.txt"), "--no-index\nnumpy\n");
        var image = new Dictionary<string, string?> { ["PACKET_IMAGE_VERSION"] = "v1" };
        if (seededAlready)
        {
            Assert.Equal(0, _scratch.Boot(environment: image).ExitCode);
            HomeFixture.Write(_scratch.Home, "new-in-v2.txt", "new");
            image["PACKET_IMAGE_VERSION"] = "v2";
        }

        var before = TreeSnapshot.Take(_scratch.Workspace);
        var home = TreeSnapshot.Take(_scratch.Home);

        var result = _scratch.Boot(["--dry-run"], ["sh", "-c", "echo RAN-$((1 + 1))"], image);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Empty(TreeSnapshot.Take(_scratch.Workspace).DifferencesFrom(before, Ignore.AccessTimes));
        Assert.Empty(TreeSnapshot.Take(_scratch.Home).DifferencesFrom(home, Ignore.AccessTimes));
        Assert.DoesNotContain("RAN-2", result.StandardOutput);
        Assert.Contains("hooks: would run: setup.sh", result.StandardOutput);
        Assert.Contains("exec: would replace the agent with sh -c echo RAN-$((1 + 1))", result.StandardOutput);
        Assert.Contains(seededAlready ? "would bring it in: 1 added" : "seed: would copy", result.StandardOutput);
        // Under each step's line, every change it would make.
        Assert.Contains($"  - write {_scratch.Workspace}/.packet/image-manifest", result.StandardOutput);
        Assert.Contains($"  - run {_scratch.Workspace}/setup.sh (", result.StandardOutput);
        Assert.Matches(@"\n  - replace the agent with /[^ ]*/sh \(sh -c echo RAN-\$\(\(1 \+ 1\)\)\)\n", result.StandardOutput);
        if (!seededAlready)
        {
            Assert.Contains($"marker: would write {_scratch.PersistedHome}/.packet-init after the seed\n  - write {_scratch.PersistedHome}/.packet-init, after the seed\n", result.StandardOutput);
        }
    }

    [Fact]
    public void Reset_home_dry_run_changes_nothing()
    {
        Assert.Equal(0, _scratch.Boot().ExitCode);
        var before = TreeSnapshot.Take(_scratch.Workspace);

        var result = Agent.Run(["reset-home", "--dry-run", "--workspace", _scratch.Workspace, "--home", _scratch.Home]);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains($"would move {_scratch.PersistedHome} to {_scratch.Workspace}/home.bak-", result.StandardOutput);
        Assert.Empty(TreeSnapshot.Take(_scratch.Workspace).DifferencesFrom(before, Ignore.AccessTimes));
    }

    [Fact]
    public void An_image_upgrade_keeps_user_changes_and_deletions_and_brings_the_rest()
    {
        HomeFixture.Write(_scratch.Home, ".bashrc", "v1 bashrc\n");
        HomeFixture.Write(_scratch.Home, ".profile", "v1 profile\n");
        HomeFixture.Write(_scratch.Home, ".config/tool.conf", "v1 conf\n");
        Assert.Equal(0, _scratch.Boot(environment: new Dictionary<string, string?> { ["PACKET_IMAGE_VERSION"] = "v1" }).ExitCode);
        File.AppendAllText(Path.Join(_scratch.PersistedHome, ".bashrc"), "alias mine=true\n");
        File.Delete(Path.Join(_scratch.PersistedHome, ".profile"));
        HomeFixture.Write(_scratch.Home, ".bashrc", "v2 bashrc\n");
        HomeFixture.Write(_scratch.Home, ".profile", "v2 profile\n");
        HomeFixture.Write(_scratch.Home, ".config/tool.conf", "v2 conf\n");
        HomeFixture.Write(_scratch.Home, ".config/new.conf", "new in v2\n");

        var upgrade = _scratch.Boot(environment: new Dictionary<string, string?> { ["PACKET_IMAGE_VERSION"] = "v2" });

        Assert.True(upgrade.ExitCode == 0, upgrade.ToString());
        Assert.Contains("info: seed[2] the image changed (version:v1 -> version:v2): 1 added, 1 updated, 1 of your changes kept", upgrade.StandardError);
        Assert.Contains($"kept your .bashrc; the image's version is beside it as .bashrc.packet-new", upgrade.StandardError);
        Assert.Contains("alias mine=true", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".bashrc")));
        Assert.Equal("v2 bashrc\n", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".bashrc.packet-new")));
        Assert.False(File.Exists(Path.Join(_scratch.PersistedHome, ".profile")));
        Assert.Equal("v2 conf\n", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".config/tool.conf")));
        Assert.Equal("new in v2\n", File.ReadAllText(Path.Join(_scratch.PersistedHome, ".config/new.conf")));
        var steady = _scratch.Boot(environment: new Dictionary<string, string?> { ["PACKET_IMAGE_VERSION"] = "v2" });
        Assert.Contains("skipped: already seeded (marker present); the image's home is unchanged", steady.StandardError);
        var off = _scratch.Boot(["--no-upgrade"], environment: new Dictionary<string, string?> { ["PACKET_IMAGE_VERSION"] = "v3" });
        Assert.Contains("skipped: already seeded (marker present)", off.StandardError);
        Assert.DoesNotContain("image changed", off.StandardError);
    }
}
