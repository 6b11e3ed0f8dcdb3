using System.Diagnostics;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// Faults and hostile input through the published binary, as root, on private tmpfs and bind
/// mounts under /tmp: never the machine's real paths.
/// </summary>
public sealed class HardeningTests : IDisposable
{
    private readonly Scratch _scratch = new();
    private readonly List<string> _mounts = [];

    public void Dispose()
    {
        foreach (string mount in Enumerable.Reverse(_mounts))
        {
            ChildProcess.Run("umount", ["-l", mount]);
        }

        _scratch.Dispose();
    }

    private string MountTmpfs(string relative, string options)
    {
        string path = _scratch.Create(relative);
        ChildProcess.MustSucceed("mount", "-t", "tmpfs", "-o", options, "tmpfs", path);
        _mounts.Add(path);
        return path;
    }

    private static ChildResult Boot(string workspace, string home, params string[] extra) =>
        Agent.Run(["boot", "--workspace", workspace, "--home", home, "--gpu", "off", .. extra]);

    [RootFact]
    public void A_volume_too_small_for_the_home_gets_nothing_and_a_later_boot_with_room_seeds_it()
    {
        Require.Root();
        HomeFixture.WriteBytes(_scratch.Home, "model.bin", HomeFixture.RandomBytes(4 << 20, 1));
        string volume = MountTmpfs("small", "size=1m,mode=0755");

        var full = Boot(volume, _scratch.Home, "--", "sh", "-c", "echo started");
        var strict = Boot(volume, _scratch.Home, "--strict");

        Assert.Equal(0, full.ExitCode);
        Assert.Equal("started\n", full.StandardOutput);
        Assert.Matches(@"warn: seed\[2\] the home needs 4\.0 MiB \(\d+ bytes\) but \S+ has \d+\.\d [KM]iB \(\d+ bytes\) free; nothing was copied", full.StandardError);
        Assert.Equal(1, strict.ExitCode);
        Assert.False(Directory.Exists(Path.Join(volume, "home")));
        Assert.False(Directory.Exists(Path.Join(volume, ".packet", "staging", "home")));

        ChildProcess.MustSucceed("mount", "-o", "remount,size=64m", volume);
        var roomy = Boot(volume, _scratch.Home);

        Assert.Equal(0, roomy.ExitCode);
        Assert.True(File.Exists(Path.Join(volume, "home", ".packet-init")));
    }

    [RootFact]
    public void A_volume_that_fills_up_mid_copy_is_given_its_space_back_and_no_home_is_marked()
    {
        Require.Root();
        for (int i = 0; i < 20; i++)
        {
            HomeFixture.Write(_scratch.Home, $"many/f{i:D3}", "x");
        }

        // A sparse file takes a few blocks here and all of its 96 MiB on exfat, which holds no holes:
        // the free-space check (blocks in use) passes and the copy runs out mid-way.
        HomeFixture.WriteSparse(_scratch.Home, "disk.img", size: 96 << 20, dataAt: [0]);
        using var exfat = new TestVolume(VolumeKind.Exfat, size: "64M");
        string volume = exfat.Create("workspace");

        var result = Boot(volume, _scratch.Home, "--", "sh", "-c", "echo started");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("started\n", result.StandardOutput);
        Assert.Contains("No space left on device (ENOSPC)", result.StandardError);
        Assert.Contains("the partial copy was removed to free the space", result.StandardError);
        Assert.False(Directory.Exists(Path.Join(volume, "home")));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Join(volume, ".packet", "staging")));
    }

    [RootTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_read_only_volume_is_a_warning_and_the_command_still_runs(bool seeded)
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, ".bashrc", "x\n");
        string source = _scratch.Create("rw-volume");
        if (seeded)
        {
            Assert.Equal(0, Boot(source, _scratch.Home).ExitCode);
        }

        string volume = _scratch.Create("ro-volume");
        ChildProcess.MustSucceed("mount", "--bind", source, volume);
        _mounts.Add(volume);
        ChildProcess.MustSucceed("mount", "-o", "remount,bind,ro", volume);

        var result = Boot(volume, _scratch.Home, "--link-home", "off", "--", "sh", "-c", "echo started");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("started\n", result.StandardOutput);
        Assert.Contains("Read-only file system (EROFS)", result.StandardError);
    }

    [Fact]
    public void An_existing_home_whose_directory_links_out_of_the_workspace_gets_nothing_written_through_it()
    {
        HomeFixture.Write(_scratch.Home, ".config/tool.conf", "image");
        HomeFixture.Write(_scratch.Home, ".config/other.conf", "image");
        string outside = _scratch.Create("outside");
        Directory.CreateDirectory(_scratch.PersistedHome);
        File.CreateSymbolicLink(Path.Join(_scratch.PersistedHome, ".config"), outside);

        var result = _scratch.Boot();

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(Directory.GetFileSystemEntries(outside));
        Assert.Equal(outside, new DirectoryInfo(Path.Join(_scratch.PersistedHome, ".config")).LinkTarget);
    }

    [RootFact]
    public void A_non_root_agent_that_cannot_read_the_home_or_write_the_workspace_warns_and_still_runs_the_command()
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, ".bashrc", "x\n");
        ChildProcess.MustSucceed("chmod", "700", _scratch.Home);
        string writable = _scratch.Create("nobodys");
        ChildProcess.MustSucceed("chown", $"{Platform.Nobody}:{Platform.Nobody}", writable);
        string homeOfNobody = _scratch.Create("nobody-home");
        HomeFixture.Write(homeOfNobody, ".bashrc", "x\n");
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.Nobody}:{Platform.Nobody}", homeOfNobody);

        ChildResult AsNobody(string workspace, string home) => ChildProcess.Run("setpriv", [
            $"--reuid={Platform.Nobody}", $"--regid={Platform.Nobody}", "--clear-groups", "--",
            RepositoryPaths.AgentBinary, "boot", "--workspace", workspace, "--home", home, "--gpu", "off", "--", "sh", "-c", "echo started"]);

        var unreadableHome = AsNobody(writable, _scratch.Home);
        var unwritableWorkspace = AsNobody(_scratch.Workspace, homeOfNobody);

        Assert.Equal(0, unreadableHome.ExitCode);
        Assert.Equal("started\n", unreadableHome.StandardOutput);
        Assert.Contains($"warn: seed[2] cannot read the home to seed from: open directory {_scratch.Home}: Permission denied (EACCES)", unreadableHome.StandardError);
        Assert.Equal(0, unwritableWorkspace.ExitCode);
        Assert.Equal("started\n", unwritableWorkspace.StandardOutput);
        Assert.Contains($"warn: guard[1] {_scratch.Workspace} is not writable by the agent's user (uid {Platform.Nobody}, gid {Platform.Nobody}): it belongs to 0:0, mode 0755", unwritableWorkspace.StandardError);
        Assert.Contains($"chown -R {Platform.Nobody}:{Platform.Nobody} {_scratch.Workspace}", unwritableWorkspace.StandardError);
        Assert.False(File.Exists(Path.Join(_scratch.PersistedHome, ".packet-init")));
    }

    [RootFact]
    public void A_proc_style_file_that_reports_no_size_is_copied_as_it_reports_itself_without_hanging()
    {
        Require.Root();
        HomeFixture.Write(_scratch.Home, "proc-version", string.Empty);
        string target = Path.Join(_scratch.Home, "proc-version");
        ChildProcess.MustSucceed("mount", "--bind", "/proc/version", target);
        _mounts.Add(target);

        var result = _scratch.Boot();

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(File.Exists(Path.Join(_scratch.PersistedHome, "proc-version")));
        Assert.Equal(0, new FileInfo(Path.Join(_scratch.PersistedHome, "proc-version")).Length);
    }

    [Fact]
    public void Garbage_from_nvidia_smi_is_a_problem_quoted_in_the_log()
    {
        string smi = _scratch.Script("bin/nvidia-smi", "echo 'Segmentation fault (core dumped)'");

        var result = _scratch.Boot(["--gpu", "require", "--nvidia-smi", smi]);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("not a GPU record: 'Segmentation fault (core dumped)'", result.StandardError);
    }

    [Fact]
    public void A_ten_second_nvidia_smi_is_healthy_under_the_default_time_limit_and_runs_beside_the_seed()
    {
        // Enough to copy that the seed is still running when nvidia-smi starts, if it starts with the boot.
        HomeFixture.WriteBytes(_scratch.Home, "weights.bin", HomeFixture.RandomBytes(64 << 20, 3));
        for (int i = 0; i < 2000; i++)
        {
            HomeFixture.Write(_scratch.Home, $"lib/f{i:D4}.py", "x = 1\n");
        }

        string marker = Path.Join(_scratch.PersistedHome, ".packet-init");
        string seenAtStart = _scratch["smi-saw"];
        // Without persistence mode nvidia-smi can take about 10 s to initialise the driver.
        string smi = _scratch.Script(
            "bin/nvidia-smi",
            $"if [ -e {ChildProcess.Quote(marker)} ]; then echo marked; else echo unmarked; fi > {ChildProcess.Quote(seenAtStart)}\nsleep 10; printf '0, NVIDIA A100, GPU-1, 40960, 0, 550.1\\n'");
        var started = Stopwatch.StartNew();

        var result = _scratch.Boot(["--gpu", "require", "--nvidia-smi", smi]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("info: gpu[5] 1 GPU found", result.StandardError);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(15), $"took {started.Elapsed}: the default --gpu-timeout is 15 s");
        Assert.Equal("unmarked", File.ReadAllText(seenAtStart).Trim());
    }
}
