using System.Text.Json;
using Packet.Agent.Boot;
using Packet.Agent.Home;
using Packet.Agent.Hooks;
using Packet.Agent.Json;
using Packet.Agent.Operations;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.Tests;

public sealed class WorkspaceStatusTests
{
    private static WorkspaceStatus Status(PathTablePosix posix, bool mounted = true) =>
        new(posix, path => new MountFacts(mounted && path == "/workspace", mounted ? "ext4" : null));

    private static PathTablePosix SeededWorkspace(string marker = "", string bashrc = "# >>> packet-persist >>>\nexport PATH=\"/workspace/bin:$PATH\"\n# <<< packet-persist <<<\n") =>
        new PathTablePosix()
            .Directory("/workspace")
            .Directory("/workspace/home")
            .File("/workspace/home/.packet-init", marker)
            .File("/workspace/home/.bashrc", bashrc)
            .Directory("/root");

    private static PathTablePosix EmptyWorkspace(uint userId = 0, bool writable = true) =>
        new PathTablePosix(userId).Directory("/workspace", writable: writable).Directory("/root").Directory("/home/dev");

    private static PathTablePosix WithReports(PathTablePosix posix, params (string Name, string Content)[] reports)
    {
        posix.Directory("/workspace/.packet");
        foreach (var (name, content) in reports)
        {
            posix.File("/workspace/.packet/" + name, content);
        }

        return posix;
    }

    [Fact]
    public void A_missing_workspace_needs_attention()
    {
        var report = Status(new PathTablePosix().Directory("/root")).Gather("/workspace", "/root");

        Assert.False(report.Workspace.Present);
        Assert.Contains("/workspace does not exist: no volume is mounted, nothing persists", report.Attention);
    }

    [Fact]
    public void A_workspace_that_is_not_a_mount_point_is_called_out_because_nothing_there_persists()
    {
        var report = Status(SeededWorkspace(), mounted: false).Gather("/workspace", "/root");

        Assert.Contains(report.Attention, a => a.Contains("is not a mount point", StringComparison.Ordinal));
    }

    [Fact]
    public void The_marker_body_says_when_and_by_which_version_the_home_was_seeded()
    {
        string body = JsonSerializer.Serialize(
            new MarkerBody("packet-agent", "0.1.0", new DateTimeOffset(2026, 11, 28, 21, 44, 0, TimeSpan.Zero), "/root", new MarkerCopied(1234, 1000, 200, 30, 4, 0, 5 << 20, 0), new MarkerSkipped(1, 2, 0, 0, 0), 1.5),
            HomeJson.Default.MarkerBody);

        var report = Status(SeededWorkspace(body)).Gather("/workspace", "/root");

        Assert.Equal("0.1.0", report.Home.Marker!.AgentVersion);
        Assert.Contains("seeded 2026-11-28 21:44 UTC by packet-agent 0.1.0 (1,234 entries, 5.0 MiB)", WorkspaceStatus.Render(report));
    }

    [Fact]
    public void An_empty_marker_is_the_bash_scripts_and_its_legacy_lines_are_recognised()
    {
        var report = Status(SeededWorkspace(string.Empty, "# packet-persist marker\nexport PATH=\"/workspace/bin:$PATH\"\n")).Gather("/workspace", "/root");

        Assert.True(report.Home.Seeded);
        Assert.True(report.Home.LegacyMarker);
        Assert.True(report.Home.LegacyProfileLines);
        Assert.Contains(report.Attention, a => a.Contains("has no workspace block", StringComparison.Ordinal));
    }

    [Fact]
    public void A_live_home_not_linked_to_the_volume_needs_attention()
    {
        var report = Status(SeededWorkspace()).Gather("/workspace", "/root");

        Assert.Equal("not wired", report.LiveHome.State);
        Assert.Contains(report.Attention, a => a.Contains("/root is not the persisted home", StringComparison.Ordinal));
    }

    [Fact]
    public void The_last_boots_warnings_and_gpus_come_from_its_report()
    {
        var boot = new BootReport("packet-agent", "0.1.0", "v2", DateTimeOffset.UnixEpoch, 0.01, 0, BootEnding.Warnings, [], null,
            [new Gpu.GpuInfo(0, "NVIDIA H100", "GPU-1", 81559, 0, "550.1")], ["gpu: nvidia-smi reported no GPUs"]);
        var posix = WithReports(SeededWorkspace(), ("last-boot.json", JsonSerializer.Serialize(boot, BootJson.Default.BootReport)));

        var report = Status(posix).Gather("/workspace", "/root");
        string text = WorkspaceStatus.Render(report);

        Assert.Equal(BootEnding.Warnings, report.LastBoot!.Outcome);
        Assert.Contains("the last boot had warnings: gpu: nvidia-smi reported no GPUs", report.Attention);
        Assert.Contains("0: NVIDIA H100, 0/81559 MiB, driver 550.1", text);
        Assert.Contains("image v2", text);
    }

    private static string FailedSeed(int exitCode = 0) => JsonSerializer.Serialize(
        new BootReport("packet-agent", "0.1.0", null, DateTimeOffset.UnixEpoch, 0.5, exitCode, BootEnding.Warnings,
            [new StepReport("guard", StepOutcome.Ok, 0, "present"), new StepReport("seed", StepOutcome.Warning, 0.4, "move the copied home into place: Invalid argument (EINVAL)")],
            null, [], ["seed: move the copied home into place: Invalid argument (EINVAL)"]),
        BootJson.Default.BootReport);

    [Theory]
    [InlineData("{\"agent\": \"packet-agent\", \"outc")]
    [InlineData("not json at all")]
    [InlineData("{}")]
    public void A_report_that_cannot_be_read_is_said_to_be_unreadable_not_missing(string garbage)
    {
        var report = Status(WithReports(SeededWorkspace(), ("last-boot.json", garbage))).Gather("/workspace", "/root");
        string text = WorkspaceStatus.Render(report);

        Assert.Null(report.LastBoot);
        Assert.StartsWith("/workspace/.packet/last-boot.json", report.LastBootUnreadable);
        Assert.Contains("last boot  report unreadable: /workspace/.packet/last-boot.json", text);
        Assert.DoesNotContain("has not booted", text);
        Assert.Contains(report.Attention, a => a.StartsWith("the last boot's report cannot be read (/workspace/.packet/last-boot.json", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_a_report_status_says_the_agent_has_not_booted_there()
    {
        var report = Status(SeededWorkspace()).Gather("/workspace", "/root");

        Assert.Null(report.LastBootUnreadable);
        Assert.Contains("last boot  no report (the agent has not booted on this workspace)", WorkspaceStatus.Render(report));
    }

    [Fact]
    public void A_workspace_the_user_cannot_write_is_named_and_no_seed_is_promised()
    {
        var report = Status(EmptyWorkspace(userId: 1000, writable: false)).Gather("/workspace", "/home/dev");

        Assert.Contains(report.Attention, a => a.StartsWith("/workspace is not writable by uid 1000: an agent running as this user can neither seed nor keep the home there", StringComparison.Ordinal));
        Assert.Contains("/workspace/home is not seeded (no .packet-init), and cannot be by uid 1000", report.Attention);
        Assert.DoesNotContain(report.Attention, a => a.Contains("the next boot", StringComparison.Ordinal));
    }

    [Fact]
    public void A_volume_prepared_for_the_user_is_not_called_unwritable_for_its_root_owned_top()
    {
        var posix = new PathTablePosix(1000)
            .Directory("/workspace", writable: false)
            .Directory("/workspace/home")
            .File("/workspace/home/.packet-init")
            .Directory("/workspace/.packet")
            .Directory("/workspace/bin")
            .Directory("/root");

        var report = Status(posix).Gather("/workspace", "/root");

        Assert.DoesNotContain(report.Attention, a => a.Contains("not writable", StringComparison.Ordinal));
    }

    [Fact]
    public void Boots_that_fail_the_same_way_are_counted_and_no_seed_is_promised()
    {
        var posix = WithReports(EmptyWorkspace(), ("last-boot.json", FailedSeed()), ("last-boot.1.json", FailedSeed()), ("last-boot.2.json", FailedSeed()), ("last-boot.3.json", "{}"));

        var report = Status(posix).Gather("/workspace", "/root");

        Assert.Contains("the last 3 boots had warnings the same way: seed: move the copied home into place: Invalid argument (EINVAL)", report.Attention);
        Assert.Contains("/workspace/home is not seeded (no .packet-init): the last boot could not seed it (move the copied home into place: Invalid argument (EINVAL))", report.Attention);
        Assert.DoesNotContain(report.Attention, a => a.Contains("the next boot", StringComparison.Ordinal));
    }

    [Fact]
    public void An_unseeded_home_without_any_failed_boot_is_left_to_the_next_boot()
    {
        var report = Status(EmptyWorkspace()).Gather("/workspace", "/root");

        Assert.Contains("/workspace/home is not seeded (no .packet-init); the next boot seeds it", report.Attention);
    }

    [Fact]
    public void A_boot_after_a_different_failure_is_not_counted_as_the_same()
    {
        var posix = WithReports(SeededWorkspace(), ("last-boot.json", FailedSeed()), ("last-boot.1.json", FailedSeed().Replace("EINVAL", "EPERM", StringComparison.Ordinal)));

        var report = Status(posix).Gather("/workspace", "/root");

        Assert.Contains("the last boot had warnings: seed: move the copied home into place: Invalid argument (EINVAL)", report.Attention);
    }

    [Fact]
    public void A_home_that_is_a_link_on_the_volume_is_not_followed_and_is_named()
    {
        var posix = new PathTablePosix().Directory("/workspace").Symlink("/workspace/home", "/etc").File("/etc/.packet-init").Directory("/root");

        var report = Status(posix).Gather("/workspace", "/root");

        Assert.False(report.Home.Seeded);
        Assert.Contains(report.Attention, a => a.StartsWith("status could not look inside: ", StringComparison.Ordinal) && a.Contains("/workspace/home", StringComparison.Ordinal));
    }

    [Fact]
    public void A_live_home_linked_to_the_persisted_one_is_wired()
    {
        var report = Status(SeededWorkspace().Symlink("/home/dev", "/workspace/home")).Gather("/workspace", "/home/dev");

        Assert.Equal("linked", report.LiveHome.State);
        Assert.DoesNotContain(report.Attention, a => a.Contains("not the persisted home", StringComparison.Ordinal));
    }

    [Fact]
    public void The_json_form_uses_stable_snake_case_names()
    {
        string json = JsonSerializer.Serialize(Status(SeededWorkspace()).Gather("/workspace", "/root"), StatusJson.Default.StatusReport);

        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        Assert.True(root.GetProperty("workspace").GetProperty("mount_point").GetBoolean());
        Assert.Equal("ext4", root.GetProperty("workspace").GetProperty("file_system").GetString());
        Assert.Equal(10L << 30, root.GetProperty("workspace").GetProperty("free_bytes").GetInt64());
        Assert.True(root.GetProperty("home").GetProperty("profile_block").GetBoolean());
        Assert.Equal("not wired", root.GetProperty("live_home").GetProperty("state").GetString());
        Assert.Equal(JsonValueKind.Array, root.GetProperty("attention").ValueKind);
    }

    private static string Report(BootEnding outcome, params string[] warnings) => JsonSerializer.Serialize(
        new BootReport("packet-agent", "0.1.0", null, new DateTimeOffset(2026, 11, 29, 8, 0, 0, TimeSpan.Zero), 0.25, outcome == BootEnding.Failed ? 1 : 0, outcome,
            [new StepReport("guard", StepOutcome.Ok, 0, "present")], null, [], warnings),
        BootJson.Default.BootReport);

    private static string SshRecord(int? pid, bool persisted = true, int keys = 1) => JsonSerializer.Serialize(
        new SshState(2222, "SHA256:abc", keys, persisted, pid, "/workspace/.packet/logs/sshd.log"), SshJson.Default.SshState);

    private static string Marker(IReadOnlyDictionary<string, MarkerLoss>? losses = null, long bytesOnDisk = 0) => JsonSerializer.Serialize(
        new MarkerBody("packet-agent", "0.2.0", new DateTimeOffset(2026, 11, 29, 7, 5, 0, TimeSpan.Zero), "/root",
            new MarkerCopied(1, 1, 0, 0, 0, 0, 3 << 20, 0, bytesOnDisk), new MarkerSkipped(0, 0, 0, 0, 0), 0.5, 0, losses),
        HomeJson.Default.MarkerBody);

    [Fact]
    public void A_healthy_workspace_is_rendered_line_by_line_with_nothing_under_attention()
    {
        var posix = WithReports(SeededWorkspace(Marker(bytesOnDisk: 2 << 20)).Symlink("/home/dev", "/workspace/home"),
            ("last-boot.json", Report(BootEnding.Ok)), (WorkspaceLayout.SshState, SshRecord(42)));
        posix.Running.Add(42);
        posix.Volume = (1L << 30, 8L << 30);

        var report = Status(posix).Gather("/workspace", "/home/dev");

        Assert.Empty(report.Attention);
        Assert.Equal(8L << 30, report.Workspace.TotalBytes);
        Assert.Equal(
            """
            workspace  /workspace: mounted (ext4), 1.0 GiB free of 8.0 GiB
            home       /workspace/home: seeded 2026-11-29 07:05 UTC by packet-agent 0.2.0 (1 entry, 2.0 MiB on disk (3.0 MiB apparent))
            profile    workspace block present
            live home  /home/dev -> /workspace/home (linked)
            ssh        port 2222, host key SHA256:abc (kept on the volume), 1 key from the pod, sshd running (pid 42)
            last boot  2026-11-29 08:00:00 UTC, ok in 0.25 s, exit 0, agent 0.1.0
            gpus       none seen by the last boot
            attention  none

            """.Replace("\r", string.Empty, StringComparison.Ordinal),
            WorkspaceStatus.Render(report));
    }

    [Fact]
    public void A_degraded_workspace_lists_every_finding_under_one_attention_heading()
    {
        var posix = WithReports(
            SeededWorkspace(" ", "# packet-persist marker\nexport PATH=\"/workspace/bin:$PATH\"\n").Symlink("/home/dev", "/elsewhere"),
            ("last-boot.json", Report(BootEnding.Stopped, "boot: stopped by SIGTERM")), (WorkspaceLayout.SshState, SshRecord(null, persisted: false, keys: 2)));

        var report = Status(posix, mounted: false).Gather("/workspace", "/home/dev");

        Assert.Equal(
            """
            workspace  /workspace: not a mount point, 10.0 GiB free of 100.0 GiB
            home       /workspace/home: seeded (by the bash script: empty marker)
            profile    the bash script's PATH lines (the next boot replaces them with the block)
            live home  /home/dev -> /elsewhere (a link elsewhere)
            ssh        port 2222, host key SHA256:abc (temporary), 2 keys from the pod, sshd not running
            last boot  2026-11-29 08:00:00 UTC, stopped in 0.25 s, exit 0, agent 0.1.0
            gpus       none seen by the last boot
            attention  - /workspace is not a mount point: it is the container's own directory, and will not survive a restart
                       - /workspace/home/.bashrc has no workspace block; the next boot adds it
                       - the last boot was stopped: boot: stopped by SIGTERM
                       - sshd (pid unknown) is not running: SSH logins fail until the next boot starts it (log: /workspace/.packet/logs/sshd.log)

            """.Replace("\r", string.Empty, StringComparison.Ordinal),
            WorkspaceStatus.Render(report));
    }

    [Fact]
    public void A_missing_workspace_is_the_only_finding_and_nothing_is_read_from_it()
    {
        var report = Status(new PathTablePosix().Directory("/root")).Gather("/workspace", "/root");

        Assert.Equal(["/workspace does not exist: no volume is mounted, nothing persists"], report.Attention);
        Assert.False(report.Workspace.MountPoint);
        Assert.Null(report.Workspace.FileSystem);
        Assert.Null(report.Workspace.FreeBytes);
        Assert.StartsWith("workspace  /workspace: missing\nhome       /workspace/home: not seeded\nprofile    no workspace block\n", WorkspaceStatus.Render(report), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unseeded_home_says_nothing_yet_of_the_live_home_or_the_profile()
    {
        var report = Status(EmptyWorkspace()).Gather("/workspace", "/root");

        Assert.Equal(["/workspace/home is not seeded (no .packet-init); the next boot seeds it"], report.Attention);
    }

    [Fact]
    public void Root_is_never_called_unable_to_write_the_volume()
    {
        var report = Status(EmptyWorkspace(userId: 0, writable: false)).Gather("/workspace", "/root");

        Assert.DoesNotContain(report.Attention, a => a.Contains("not writable", StringComparison.Ordinal));
    }

    [Fact]
    public void A_workspace_missing_some_of_its_folders_is_itself_checked_for_writing()
    {
        var posix = new PathTablePosix(1000).Directory("/workspace", writable: false).Directory("/workspace/home").Directory("/home/dev");

        var report = Status(posix).Gather("/workspace", "/home/dev");

        Assert.Contains(report.Attention, a => a.StartsWith("/workspace is not writable by uid 1000", StringComparison.Ordinal));
    }

    [Fact]
    public void The_first_folder_the_user_cannot_write_is_named_by_its_own_path()
    {
        var posix = new PathTablePosix(1000)
            .Directory("/workspace", writable: false)
            .Directory("/workspace/home", writable: false)
            .Directory("/workspace/.packet")
            .Directory("/workspace/bin")
            .Directory("/home/dev");

        var report = Status(posix).Gather("/workspace", "/home/dev");

        Assert.Contains(report.Attention, a => a.StartsWith("/workspace/home is not writable by uid 1000", StringComparison.Ordinal));
    }

    [Fact]
    public void What_the_volume_did_not_keep_is_shown_and_needs_attention()
    {
        var losses = new Dictionary<string, MarkerLoss> { ["hard_links"] = new(3, "/root/a", "the volume has no hard links") };
        var report = Status(SeededWorkspace(Marker(losses)).Symlink("/home/dev", "/workspace/home")).Gather("/workspace", "/home/dev");

        Assert.Equal(["the volume did not keep all of the home when it was seeded (hard links; see \"not kept\"): cp -a loses the same there; a volume such as ext4 or xfs keeps them"], report.Attention);
        Assert.Contains("\nnot kept   hard links: 3 (e.g. /root/a: the volume has no hard links)\n", WorkspaceStatus.Render(report), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(BootEnding.Failed, 1, "the last boot failed: seed: no space")]
    [InlineData(BootEnding.Failed, 2, "the last 2 boots failed the same way: seed: no space")]
    [InlineData(BootEnding.Stopped, 2, "the last 2 boots were stopped the same way: seed: no space")]
    [InlineData(BootEnding.Warnings, 4, "the last 4 boots had warnings the same way: seed: no space")]
    public void Boots_that_did_not_end_ok_are_named_by_how_they_ended_and_how_often(BootEnding outcome, int boots, string expected)
    {
        var reports = Enumerable.Range(0, boots).Select(n => (n == 0 ? "last-boot.json" : $"last-boot.{n}.json", Report(outcome, "seed: no space"))).ToArray();

        var report = Status(WithReports(SeededWorkspace().Symlink("/home/dev", "/workspace/home"), reports)).Gather("/workspace", "/home/dev");

        Assert.Equal([expected], report.Attention);
    }

    [Fact]
    public void An_unseeded_home_after_a_boot_without_a_seed_step_is_left_to_the_next_boot()
    {
        var report = Status(WithReports(EmptyWorkspace(), ("last-boot.json", Report(BootEnding.Ok)))).Gather("/workspace", "/root");

        Assert.Equal(["/workspace/home is not seeded (no .packet-init); the next boot seeds it"], report.Attention);
    }

    [Fact]
    public void A_running_sshd_needs_no_attention_and_a_damaged_ssh_record_is_passed_over()
    {
        var running = WithReports(SeededWorkspace().Symlink("/home/dev", "/workspace/home"), (WorkspaceLayout.SshState, SshRecord(7)));
        running.Running.Add(7);
        var damaged = WithReports(SeededWorkspace().Symlink("/home/dev", "/workspace/home"), (WorkspaceLayout.SshState, "{\"port\": "));

        var up = Status(running).Gather("/workspace", "/home/dev");
        var unknown = Status(damaged).Gather("/workspace", "/home/dev");

        Assert.True(up.Ssh!.Running);
        Assert.Empty(up.Attention);
        Assert.Null(unknown.Ssh);
        Assert.Empty(unknown.Attention);
    }

    [Theory]
    [InlineData(StepOutcome.Skipped, false)]
    [InlineData(StepOutcome.Ok, true)]
    [InlineData(StepOutcome.Warning, true)]
    public void A_gone_sshd_needs_attention_only_when_the_last_boot_meant_it_to_run(StepOutcome sshOutcome, bool attention)
    {
        string report = JsonSerializer.Serialize(
            new BootReport("packet-agent", "0.1.0", null, new DateTimeOffset(2026, 11, 29, 8, 0, 0, TimeSpan.Zero), 0.25, 0, BootEnding.Ok, [new StepReport("ssh", sshOutcome, 0, "no key to let in")], null, [], []),
            BootJson.Default.BootReport);

        var status = Status(WithReports(SeededWorkspace().Symlink("/home/dev", "/workspace/home"), ("last-boot.json", report), (WorkspaceLayout.SshState, SshRecord(7)))).Gather("/workspace", "/home/dev");

        Assert.Equal(attention, status.Attention.Any(a => a.StartsWith("sshd (pid 7) is not running", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_listen_address_shows_before_the_port()
    {
        string record = JsonSerializer.Serialize(new SshState(2222, "SHA256:abc", 1, true, 7, "/log", "127.0.0.1"), SshJson.Default.SshState);
        var running = WithReports(SeededWorkspace().Symlink("/home/dev", "/workspace/home"), (WorkspaceLayout.SshState, record));
        running.Running.Add(7);

        string text = WorkspaceStatus.Render(Status(running).Gather("/workspace", "/home/dev"));

        Assert.Contains("\nssh        127.0.0.1 port 2222, host key SHA256:abc (kept on the volume), 1 key from the pod, sshd running (pid 7)\n", text, StringComparison.Ordinal);
    }

    private static BootReport AsideReport(int hour, string workspace = "/workspace") =>
        new("packet-agent", "0.1.0", null, new DateTimeOffset(2026, 11, 29, hour, 0, 0, TimeSpan.Zero), 0.01, 0, BootEnding.Warnings,
            [new StepReport("guard", StepOutcome.Warning, 0, "/workspace is not writable by the agent's user (uid 1000, gid 1000): ... set the pod's securityContext.fsGroup: 1000")], null, [],
            ["guard: /workspace is not writable by the agent's user (uid 1000, gid 1000): ... set the pod's securityContext.fsGroup: 1000"], workspace, "the workspace was not usable (/workspace is not writable)");

    [Fact]
    public void A_boot_whose_report_the_volume_could_not_take_is_told_from_the_runtime_directory_with_its_fix()
    {
        var aside = new AsideReport(AsideReport(9), "/tmp/packet-agent-1000/last-boot.json");

        var report = Status(EmptyWorkspace()).Gather("/workspace", "/root", aside);
        string text = WorkspaceStatus.Render(report);

        Assert.Same(aside.Report, report.LastBoot);
        Assert.Equal("/tmp/packet-agent-1000/last-boot.json", report.LastBootPath);
        Assert.Contains("the last boot's report is not on the volume (the workspace was not usable (/workspace is not writable)): it is kept in /tmp/packet-agent-1000/last-boot.json, for as long as this container runs", report.Attention);
        Assert.Contains(report.Attention, a => a.StartsWith("the last boot had warnings: guard: /workspace is not writable by the agent's user (uid 1000, gid 1000)", StringComparison.Ordinal) && a.Contains("fsGroup: 1000", StringComparison.Ordinal));
        Assert.Contains("last boot  2026-11-29 09:00:00 UTC, warnings in 0.01 s, exit 0, agent 0.1.0 (report in /tmp/packet-agent-1000/last-boot.json: not on the volume)\n", text, StringComparison.Ordinal);
        Assert.DoesNotContain("has not booted", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_report_on_the_volume_newer_than_the_one_kept_aside_is_the_last_boot()
    {
        var posix = WithReports(EmptyWorkspace(), ("last-boot.json", Report(BootEnding.Ok)));

        var newer = Status(posix).Gather("/workspace", "/root", new AsideReport(AsideReport(7), "/run/packet-agent/last-boot.json"));
        var older = Status(WithReports(EmptyWorkspace(), ("last-boot.json", Report(BootEnding.Ok)))).Gather("/workspace", "/root", new AsideReport(AsideReport(9), "/run/packet-agent/last-boot.json"));

        Assert.Equal(BootEnding.Ok, newer.LastBoot!.Outcome);
        Assert.Equal("/workspace/.packet/last-boot.json", newer.LastBootPath);
        Assert.DoesNotContain(newer.Attention, a => a.Contains("not on the volume", StringComparison.Ordinal));
        Assert.Equal(BootEnding.Warnings, older.LastBoot!.Outcome);
    }

    [Fact]
    public void A_stopped_sshd_is_named_by_its_pid()
    {
        var report = Status(WithReports(SeededWorkspace().Symlink("/home/dev", "/workspace/home"), (WorkspaceLayout.SshState, SshRecord(7)))).Gather("/workspace", "/home/dev");

        Assert.False(report.Ssh!.Running);
        Assert.Equal(["sshd (pid 7) is not running: SSH logins fail until the next boot starts it (log: /workspace/.packet/logs/sshd.log)"], report.Attention);
    }

    [Fact]
    public void A_marker_that_cannot_be_read_is_named_and_not_taken_for_the_bash_scripts()
    {
        var posix = new PathTablePosix().Directory("/workspace").Directory("/workspace/home").Directory("/workspace/home/.packet-init").Directory("/root");

        var report = Status(posix).Gather("/workspace", "/root");

        Assert.True(report.Home.Seeded);
        Assert.False(report.Home.LegacyMarker);
        Assert.Contains(report.Attention, a => a.StartsWith("status could not read: ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_marker_that_is_not_json_still_counts_as_seeded()
    {
        var report = Status(SeededWorkspace("garbage {")).Gather("/workspace", "/root");

        Assert.True(report.Home.Seeded);
        Assert.False(report.Home.LegacyMarker);
        Assert.Null(report.Home.Marker);
        Assert.Contains("home       /workspace/home: seeded\n", WorkspaceStatus.Render(report), StringComparison.Ordinal);
    }

    [Fact]
    public void A_report_that_is_a_folder_is_unreadable_and_named()
    {
        var posix = SeededWorkspace();
        posix.Directory("/workspace/.packet").Directory("/workspace/.packet/last-boot.json");

        var report = Status(posix).Gather("/workspace", "/root");

        Assert.StartsWith("/workspace/.packet/last-boot.json: ", report.LastBootUnreadable, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("missing", null)]
    [InlineData("a link elsewhere", "/srv/home")]
    public void A_live_home_that_is_missing_or_points_elsewhere_is_said_to_be(string state, string? target)
    {
        var posix = SeededWorkspace();
        if (target is not null)
        {
            posix.Symlink("/home/dev", target);
        }

        var report = Status(posix).Gather("/workspace", "/home/dev");

        Assert.Equal(state, report.LiveHome.State);
        Assert.Equal(target, report.LiveHome.Target);
    }

    [Fact]
    public void A_live_home_mounted_from_the_volume_or_being_the_persisted_home_is_mounted()
    {
        var posix = SeededWorkspace().Directory("/home/dev");
        var mountedHere = new WorkspaceStatus(posix, path => new MountFacts(path is "/workspace" or "/home/dev", "ext4"));

        Assert.Equal("mounted", mountedHere.Gather("/workspace", "/home/dev").LiveHome.State);
        Assert.Equal("mounted", Status(posix).Gather("/workspace", "/workspace/home").LiveHome.State);
        Assert.Equal("not wired", Status(posix).Gather("/workspace", "/home/dev").LiveHome.State);
    }
}

public sealed class BootReportJsonTests
{
    [Theory]
    [InlineData(true, BootEnding.Failed)]
    [InlineData(true, BootEnding.Stopped)]
    [InlineData(false, BootEnding.Ok)]
    [InlineData(false, BootEnding.Warnings)]
    public void The_hand_written_report_is_what_the_serializer_would_write(bool full, BootEnding ending)
    {
        var report = new BootReport(
            "packet-agent",
            "0.1.0+abc",
            full ? "2026.11 \"quoted\" é" : null,
            new DateTimeOffset(2026, 11, 28, 21, 44, 45, 123, TimeSpan.Zero),
            0.013,
            full ? 1 : 0,
            ending,
            [
                new StepReport("guard", StepOutcome.Ok, 0.001, "workspace /workspace is present"),
                new StepReport("seed", StepOutcome.Warning, 1.5, "left out a\nb", full ? "another agent seeded the home while this one waited for the lock" : null),
                new StepReport("hooks", StepOutcome.Skipped, 0, "no hooks"),
                new StepReport("exec", StepOutcome.Failed, 0, "not found"),
            ],
            full ? new SeedCounts(
                new MarkerCopied(10, 8, 1, 1, 2, 3, 4096, 4, 8192),
                new MarkerSkipped(1, 2, 3, 4, 5),
                0.25,
                0.125,
                new Dictionary<string, MarkerLoss> { ["owners"] = new(3, "/root/a", "EPERM"), ["names"] = new(1, "/root/b:c", "EINVAL") }) : null,
            full ? [new Gpu.GpuInfo(0, "NVIDIA H100", "GPU-1", 81559, 17, "550.1"), new Gpu.GpuInfo(1, "NVIDIA H100", "GPU-2", null, null, "550.1")] : [],
            full ? ["seed: left out a\nb"] : []);

        using var handWritten = JsonDocument.Parse(BootReportJson.Write(report));
        using var serialized = JsonDocument.Parse(JsonSerializer.SerializeToUtf8Bytes(report, BootJson.Default.BootReport));

        Assert.True(JsonElement.DeepEquals(serialized.RootElement, handWritten.RootElement), $"{serialized.RootElement}\n{handWritten.RootElement}");
    }
}

public sealed class BootReportJsonEncodingTests
{
    [Fact]
    public void The_report_escapes_only_what_json_requires_so_names_stay_readable_in_the_file()
    {
        var report = new BootReport("packet-agent", "0.1.0+abc", "café <v2>", DateTimeOffset.UnixEpoch, 0, 0, BootEnding.Ok, [], null, [], []);

        string written = System.Text.Encoding.UTF8.GetString(BootReportJson.Write(report));

        Assert.Contains("\"agent_version\":\"0.1.0+abc\"", written);
        Assert.Contains("\"image_version\":\"café <v2>\"", written);
    }
}

public sealed class MinimalJsonEncoderTests
{
    [Theory]
    [InlineData("plain ascii")]
    [InlineData("quote \" backslash \\ slash /")]
    [InlineData("line\nfeed\r\ttab\b\f")]
    [InlineData("control \u0001 \u001f delete \u007f")]
    [InlineData("é 日本 <script>&'+")]
    [InlineData("emoji \U0001F680 pair")]
    [InlineData("bad-\u0000\u00ff-name")]
    public void Any_string_comes_back_unchanged_through_a_json_parser(string text)
    {
        byte[] written = WriteString(text);

        using var parsed = JsonDocument.Parse(written);

        Assert.Equal(text, parsed.RootElement.GetProperty("v").GetString());
    }

    [Fact]
    public void Only_what_json_requires_is_escaped_and_the_rest_is_utf8()
    {
        string written = System.Text.Encoding.UTF8.GetString(WriteString("é<\"\\\n\u0001\U0001F680"));

        Assert.Equal("{\"v\":\"é<\\\"\\\\\\n\\u0001\U0001F680\"}", written);
    }

    [Fact]
    public void A_lone_surrogate_becomes_the_replacement_character()
    {
        using var parsed = JsonDocument.Parse(WriteString("a\ud800b"));

        Assert.Equal("a\ufffdb", parsed.RootElement.GetProperty("v").GetString());
    }

    [Theory]
    [InlineData(0x00, true)]
    [InlineData(0x1f, true)]
    [InlineData('"', true)]
    [InlineData('\\', true)]
    [InlineData(' ', false)]
    [InlineData('/', false)]
    [InlineData(0x7f, false)]
    [InlineData('é', false)]
    [InlineData(0x1F680, false)]
    public void Exactly_controls_quotes_and_backslashes_are_escaped(int scalar, bool escaped) =>
        Assert.Equal(escaped, MinimalJsonEncoder.Instance.WillEncode(scalar));

    [Theory]
    [InlineData("plain, with spaces", "plain, with spaces")]
    [InlineData("a \"b\" c", "a \\\"b\\\" c")]
    [InlineData("\u0001 after", "\\u0001 after")]
    [InlineData("tab\tthen space", "tab\\tthen space")]
    [InlineData("\r\b\f", "\\r\\b\\f")]
    [InlineData("pair \U0001F680 then \"", "pair \U0001F680 then \\\"")]
    public void Text_after_the_first_escape_is_escaped_by_the_same_rules(string text, string expected) =>
        Assert.Equal(expected, MinimalJsonEncoder.Instance.Encode(text));

    // Surrogates are written {D800}: a lone one cannot travel in a test's data.
    [Theory]
    [InlineData("", -1)]
    [InlineData("abc", -1)]
    [InlineData("ab{D83D}{DE80}", -1)]
    [InlineData("{D83D}{DE80}\n", 2)]
    [InlineData("ab{D800}", 2)]
    [InlineData("{DC00}x", 0)]
    [InlineData("{D800}x", 0)]
    [InlineData("x{D800}{D800}{DC00}", 1)]
    [InlineData("ok \\", 3)]
    [InlineData("ok \u001f", 3)]
    public void The_first_character_to_escape_is_found_and_a_surrogate_pair_is_passed_over_whole(string text, int expected) =>
        Assert.Equal(expected, FirstToEncode(System.Text.RegularExpressions.Regex.Replace(text, "{([0-9A-F]{4})}", m => ((char)Convert.ToInt32(m.Groups[1].Value, 16)).ToString())));

    [Theory]
    [InlineData("\"", 2)]
    [InlineData("\u0001", 6)]
    [InlineData("é", 1)]
    public void An_escape_fits_a_buffer_of_exactly_its_length_and_not_one_less(string text, int length)
    {
        var exact = new char[length];
        var short1 = new char[length - 1];

        Assert.Equal(System.Buffers.OperationStatus.Done, MinimalJsonEncoder.Instance.Encode(text, exact, out _, out int written));
        Assert.Equal(length, written);
        Assert.Equal(System.Buffers.OperationStatus.DestinationTooSmall, MinimalJsonEncoder.Instance.Encode(text, short1, out _, out int none));
        Assert.Equal(0, none);
    }

    private static unsafe int FirstToEncode(string text)
    {
        fixed (char* start = text)
        {
            return MinimalJsonEncoder.Instance.FindFirstCharacterToEncode(start, text.Length);
        }
    }

    private static byte[] WriteString(string text)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = MinimalJsonEncoder.Instance }))
        {
            json.WriteStartObject();
            json.WriteString("v", text);
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }
}

public sealed class HookStateTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void What_the_serializer_saves_is_read_back_whole(bool withRequirements)
    {
        var saved = new Hooks.HookState { RequirementsInstalled = withRequirements ? "0123abcd" : null };
        saved.FirstBootSucceeded["10-jupyter"] = "aa11";
        saved.FirstBootSucceeded["20 \"odd\" name é"] = "bb22";

        var loaded = Hooks.HookState.Parse(JsonSerializer.SerializeToUtf8Bytes(saved, HooksJson.Default.HookState));

        Assert.Equal(saved.FirstBootSucceeded, loaded.FirstBootSucceeded);
        Assert.Equal(saved.RequirementsInstalled, loaded.RequirementsInstalled);
    }

    [Fact]
    public void Fields_it_does_not_know_are_passed_over()
    {
        var loaded = Hooks.HookState.Parse("""{"version":2,"extra":{"a":[1,{"b":null}]},"first_boot_succeeded":{"x":"1"},"requirements_installed":null}"""u8);

        Assert.Equal("1", loaded.FirstBootSucceeded["x"]);
        Assert.Null(loaded.RequirementsInstalled);
    }

    [Theory]
    [InlineData("")]
    [InlineData("{")]
    [InlineData("[]")]
    [InlineData("{\"first_boot_succeeded\":{\"x\":1}}")]
    [InlineData("{\"first_boot_succeeded\":[\"x\"]}")]
    [InlineData("{\"requirements_installed\":{}}")]
    [InlineData("{\"first_boot_succeeded\":{\"x\":\"1\"}")]
    public void A_damaged_record_reads_as_empty_so_first_boot_hooks_run_again(string json)
    {
        var loaded = Hooks.HookState.Parse(System.Text.Encoding.UTF8.GetBytes(json));

        Assert.Empty(loaded.FirstBootSucceeded);
        Assert.Null(loaded.RequirementsInstalled);
    }
}
