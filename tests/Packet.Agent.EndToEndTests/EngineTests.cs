using System.Diagnostics;
using System.Text.Json;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// The images the tests run: a Debian bullseye base (the build's own sysroot, made by debootstrap,
/// imported: no registry is reachable here), container/Dockerfile built as it is with the agent
/// under test through <c>--build-context build=DIR</c>, its <c>agent</c> stage alone, and a USER
/// 1000 image on top, as Jupyter's docker-stacks images are.
/// </summary>
public sealed class EngineImages : IDisposable
{
    public const string Base = "localhost/packet-test-base";
    public const string Image = "localhost/packet-cuda:test";
    public const string AgentOnly = "localhost/packet-agent:test";
    public const string NonRoot = "localhost/packet-cuda-nonroot:test";

    /// <summary>
    /// A stand-in for the NVIDIA container runtime's nvidia-smi (what cannot run here: a GPU). It
    /// answers the agent's query (<c>--query-gpu=index,name,uuid,memory.total,memory.used,driver_version
    /// --format=csv,noheader,nounits</c>, nvidia-smi --help-query-gpu) as an H100 node does.
    /// </summary>
    public const string StandInNvidiaSmi = "#!/bin/sh\necho '0, NVIDIA H100 80GB HBM3, GPU-5f0a7e2c-1111-2222-3333-444455556666, 81559, 0, 550.54.15'\n";

    private readonly TempDirectory _dir = new("engine-images");
    private readonly Lock _manifestImages = new();
    private bool _manifestImagesBuilt;

    public EngineImages()
    {
        if (!Platform.IsRoot)
        {
            Engine = null!;
            return; // the tests skip (or, with PACKET_TEST_REQUIRE_ROOT=1, fail) on their own
        }

        Engine = new Podman();
        string sysroot = Path.Join(RepositoryPaths.Root, "artifacts", "sysroot-bullseye");
        Assert.True(File.Exists(Path.Join(sysroot, ".complete")), "scripts/build.sh makes the bullseye root file system the base image comes from; run it first");
        Engine.Import(sysroot, Base);

        string agent = _dir.Create("context/out");
        foreach (string file in new[] { "packet-agent", "libMonoPosixHelper.so" })
        {
            File.Copy(Path.Join(Path.GetDirectoryName(RepositoryPaths.AgentBinary)!, file), Path.Join(agent, file));
        }

        string[] build = ["build", "--network", "host", "--file", Path.Join(RepositoryPaths.Root, "container/Dockerfile"),
            "--build-context", $"build={_dir["context"]}", "--build-arg", $"CUDA_IMAGE={Base}", "--build-arg", "IMAGE_VERSION=test"];
        Engine.MustRun([.. build, "--tag", Image, RepositoryPaths.Root]);
        Engine.MustRun([.. build, "--target", "agent", "--tag", AgentOnly, RepositoryPaths.Root]);

        string nonRoot = _dir.Create("nonroot");
        File.WriteAllText(Path.Join(nonRoot, "Dockerfile"), string.Join('\n',
            $"FROM {Image}",
            "RUN useradd --create-home --uid 1000 dev && echo 'from the image' > /home/dev/.image-note && chown dev:dev /home/dev/.image-note",
            "USER 1000",
            "ENV HOME=/home/dev",
            string.Empty));
        Engine.MustRun("build", "--network", "host", "--tag", NonRoot, nonRoot);
    }

    public Podman Engine { get; }

    /// <summary>
    /// The images container/k8s names, made from the test images and tagged with those very names in
    /// this engine's own store, so that every manifest plays byte for byte as shipped: the CUDA image
    /// with a stand-in nvidia-smi (the pods ask for a GPU, <c>PACKET_GPU=require</c>), its USER 1000
    /// variant, and the full-dev example built on it.
    /// </summary>
    public IReadOnlyDictionary<string, string> ManifestImages()
    {
        var images = new Dictionary<string, string>
        {
            ["ghcr.io/example/packet-cuda:latest"] = "the CUDA image (container/Dockerfile) with a stand-in nvidia-smi",
            ["ghcr.io/example/packet-cuda-nonroot:latest"] = "the same as USER 1000 with HOME=/home/dev",
            ["ghcr.io/example/packet-full-dev:latest"] = "container/examples/full-dev built on the first",
        };
        lock (_manifestImages)
        {
            if (!_manifestImagesBuilt)
            {
                string gpu = _dir.Create("manifest-images/gpu");
                File.WriteAllText(Path.Join(gpu, "nvidia-smi"), StandInNvidiaSmi);
                File.SetUnixFileMode(Path.Join(gpu, "nvidia-smi"), (UnixFileMode)0b111_101_101);
                File.WriteAllText(Path.Join(gpu, "Dockerfile"), $"FROM {Image}\nCOPY nvidia-smi /usr/bin/nvidia-smi\n");
                Engine.MustRun("build", "--network", "none", "--tag", "ghcr.io/example/packet-cuda:latest", gpu);
                string nonRoot = _dir.Create("manifest-images/nonroot");
                File.WriteAllText(Path.Join(nonRoot, "Dockerfile"), string.Join('\n',
                    "FROM ghcr.io/example/packet-cuda:latest",
                    "RUN useradd --create-home --uid 1000 dev && echo 'from the image' > /home/dev/.image-note && chown dev:dev /home/dev/.image-note",
                    "USER 1000",
                    "ENV HOME=/home/dev",
                    string.Empty));
                Engine.MustRun("build", "--network", "none", "--tag", "ghcr.io/example/packet-cuda-nonroot:latest", nonRoot);
                Engine.MustRun("build", "--network", "host", "--build-arg", "BASE_IMAGE=ghcr.io/example/packet-cuda:latest", "--tag", "ghcr.io/example/packet-full-dev:latest",
                    Path.Join(RepositoryPaths.Root, "container/examples/full-dev"));
                _manifestImagesBuilt = true;
            }
        }

        return images;
    }

    public void Dispose()
    {
        Engine?.Dispose();
        _dir.Dispose();
    }
}

/// <summary>The tests that run images on the engine share its images and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class EngineCollection : ICollectionFixture<EngineImages>
{
    public const string Name = "engine";
}

/// <summary>
/// The image on a real OCI engine: rootful podman 4.3 with runc (Debian 12), each container with
/// the volume bind-mounted at /workspace as the kubelet does. What podman 4.3 cannot show of
/// Kubernetes is done as the kubelet would, and said so in each test.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class EngineTests(EngineImages images) : IDisposable
{
    private readonly TempDirectory _dir = new("engine");
    private readonly List<string> _containers = [];

    private Podman Engine => images.Engine;

    public void Dispose()
    {
        foreach (string container in _containers)
        {
            Engine.Run("rm", "--force", "--time", "0", container);
        }

        _dir.Dispose();
    }

    [RootFact]
    public void An_entrypoint_pod_keeps_its_home_and_its_tools_across_three_container_replacements()
    {
        Require.Root();
        string volume = _dir.Create("volume");

        for (int start = 1; start <= 3; start++)
        {
            string pod = Start(volume);
            if (start == 1)
            {
                HomeFixture.Write(volume, "bin/mytool", "#!/bin/sh\necho mytool from the volume\n", mode: "755");
            }

            var shell = Exec(pod, "bash", "-ic", $"echo \"$HOME\"; cat ~/notes.txt 2>/dev/null; echo start {start} >> ~/notes.txt; test -f ~/.profile && echo image file here");
            var tool = Exec(pod, "mytool");
            var viaShell = Exec(pod, "bash", "-c", "mytool");

            Assert.Equal(0, shell.ExitCode);
            string[] lines = shell.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal("/root", lines[0]);
            Assert.Equal(Enumerable.Range(1, start - 1).Select(n => $"start {n}"), lines[1..^1]);
            Assert.Equal("image file here", lines[^1]);
            Assert.True(tool.ExitCode == 0 && tool.StandardOutput == "mytool from the volume\n", $"podman exec {pod} mytool: {tool}");
            Assert.True(viaShell.ExitCode == 0, viaShell.ToString());
            Engine.MustRun("rm", "--force", "--time", "10", pod);
        }

        Assert.Equal("start 1\nstart 2\nstart 3\n", File.ReadAllText(Path.Join(volume, "home", "notes.txt")));
    }

    [RootFact]
    public void Shells_nested_or_not_and_exec_without_a_shell_have_the_volumes_directories_on_PATH_once()
    {
        Require.Root();
        string volume = _dir.Create("volume");
        Directory.CreateDirectory(Path.Join(volume, "venv", "bin"));
        string pod = Start(volume);

        var plain = Exec(pod, "sh", "-c", "echo \"$PATH\"");
        var interactive = Exec(pod, "bash", "-ic", "echo \"$PATH\"");
        var nested = Exec(pod, "bash", "-ic", "bash -ic 'bash -ic \"echo \\$PATH\"'");
        var terminal = Engine.Run("exec", "--tty", pod, "bash", "-ic", "echo \"$PATH\"");

        foreach (var result in new[] { plain, interactive, nested, terminal })
        {
            Assert.True(result.ExitCode == 0, result.ToString());
            // With --tty, the banner and bash's notes share standard output, and lines end in \r\n.
            var entries = result.StandardOutput.Split('\n').Select(line => line.Trim()).Last(line => line.Contains("/usr/bin", StringComparison.Ordinal)).Split(':');
            Assert.Equal(1, entries.Count(e => e == "/workspace/bin"));
            Assert.Equal(1, entries.Count(e => e == "/workspace/venv/bin"));
        }
    }

    [RootFact]
    public void The_pod_stops_at_once_and_tini_leaves_no_zombie()
    {
        Require.Root();
        string pod = Start(_dir.Create("volume"));
        Exec(pod, "sh", "-c", "sleep 0.2 & exit 0"); // an orphan, reparented to PID 1
        Thread.Sleep(800);

        var zombies = Exec(pod, "sh", "-c", "grep -l '^State:.*Z' /proc/[0-9]*/status || true");
        var stopping = Stopwatch.StartNew();
        Engine.MustRun("stop", "--time", "10", pod);

        Assert.Equal(string.Empty, zombies.StandardOutput);
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(3), $"podman stop took {stopping.Elapsed}");
    }

    /// <summary>
    /// The init-container layout (container/k8s/pod-init-container.yaml) as the kubelet runs it:
    /// the init container to its end, then the main container with the volume's home mounted at
    /// /root. podman 4.3 cannot play it as a pod: its init containers follow the pod's restart
    /// policy (fixed in 4.6) and it ignores subPath on a claim (fixed in 4.4), so the two
    /// containers are run one after the other, the subPath as a bind mount of the subdirectory.
    /// </summary>
    [RootFact]
    public void The_init_container_layout_seeds_the_volume_and_the_main_container_uses_the_home_where_it_is()
    {
        Require.Root();
        string volume = _dir.Create("volume");

        var init = Engine.Run("run", "--rm", "--network", "none", "--volume", $"{volume}:/workspace", "--entrypoint", "packet-agent", EngineImages.Image, "boot", "--strict", "--gpu", "off");
        string main = Start(volume, options: ["--volume", $"{Path.Join(volume, "home")}:/root"]);
        var shell = Exec(main, "bash", "-ic", "echo \"$HOME\"; stat -c %i ~; echo note > ~/from-main");

        Assert.True(init.ExitCode == 0, init.ToString());
        Assert.True(File.Exists(Path.Join(volume, "home", ".packet-init")));
        Assert.Contains("info: exec[8] /root already is the persisted home (the volume is mounted there)", Engine.Run("logs", main).StandardError);
        Assert.True(shell.ExitCode == 0, shell.ToString());
        Assert.Equal("note\n", File.ReadAllText(Path.Join(volume, "home", "from-main")));
    }

    [RootFact]
    public void A_strict_init_container_that_cannot_seed_fails_with_its_reason_in_the_termination_message()
    {
        Require.Root();
        string terminationLog = Path.Join(_dir.Path, "termination-log");
        File.WriteAllText(terminationLog, string.Empty); // the kubelet creates it in every container

        // No volume at /workspace: the image's own directory, which persists nothing.
        var init = Engine.Run("run", "--rm", "--network", "none", "--volume", $"{terminationLog}:/dev/termination-log",
            "--entrypoint", "packet-agent", EngineImages.Image, "boot", "--strict", "--gpu", "off", "--workspace", "/mnt/no-volume");

        Assert.Equal(1, init.ExitCode);
        Assert.StartsWith("guard: /mnt/no-volume does not exist", File.ReadAllText(terminationLog));
        Assert.Contains("fail: guard[1] /mnt/no-volume does not exist", init.StandardError);
    }

    [RootFact]
    public void Another_image_takes_the_agent_from_the_agent_stage_with_one_COPY()
    {
        Require.Root();
        string context = _dir.Create("consumer");
        File.WriteAllText(Path.Join(context, "Dockerfile"), string.Join('\n',
            $"FROM {EngineImages.Base}",
            $"COPY --from={EngineImages.AgentOnly} /opt/packet-agent/ /opt/packet-agent/",
            string.Empty));

        Engine.MustRun("build", "--network", "none", "--tag", "localhost/consumer:test", context);
        var version = Engine.Run("run", "--rm", "--network", "none", "localhost/consumer:test", "/opt/packet-agent/packet-agent", "--version");
        var files = Engine.Run("image", "mount", EngineImages.AgentOnly);

        Assert.True(version.ExitCode == 0 && version.StandardOutput.StartsWith("packet-agent ", StringComparison.Ordinal), version.ToString());
        Assert.Equal(["libMonoPosixHelper.so", "packet-agent"], Directory.GetFiles(Path.Join(files.StandardOutput.Trim(), "opt/packet-agent")).Select(Path.GetFileName).Order());
        Assert.Equal(["opt"], Directory.GetFileSystemEntries(files.StandardOutput.Trim()).Select(Path.GetFileName));
        Engine.Run("image", "unmount", EngineImages.AgentOnly);
    }

    [RootFact]
    public void A_non_root_image_on_a_volume_it_cannot_write_says_whose_it_is_still_runs_its_command_and_status_there_tells_the_same()
    {
        Require.Root();
        string volume = _dir.Create("volume"); // root's, 0755: what a fresh claim looks like to uid 1000

        var boot = Engine.Run("run", "--rm", "--network", "none", "--volume", $"{volume}:/workspace", EngineImages.NonRoot, "sh", "-c", "echo command ran");
        string pod = Start(volume, EngineImages.NonRoot);
        var status = Exec(pod, "packet-agent", "status");
        var json = Exec(pod, "packet-agent", "status", "--json");
        var log = Engine.Run("logs", pod);

        Assert.Equal(0, boot.ExitCode);
        Assert.Equal("command ran\n", boot.StandardOutput);
        var guard = Assert.Single(boot.ErrorLines, line => line.Contains("warn: guard[1]", StringComparison.Ordinal));
        Assert.Contains("/workspace is not writable by the agent's user (uid 1000, gid 1000): it belongs to 0:0, mode 0755", guard);
        Assert.Contains("securityContext.fsGroup: 1000", guard);
        Assert.Contains("info: boot[0] boot report kept in /tmp/packet-agent-1000/last-boot.json (no usable workspace): status in this container reads it there", log.StandardError);

        // status in the same container: what the boot said, its fix, and that nothing is kept on the volume.
        Assert.Equal(1, status.ExitCode);
        Assert.Contains("/workspace is not writable by uid 1000", status.StandardOutput);
        Assert.DoesNotContain("the next boot seeds it", status.StandardOutput);
        Assert.DoesNotContain("has not booted", status.StandardOutput);
        Assert.Contains("(report in /tmp/packet-agent-1000/last-boot.json: not on the volume)", status.StandardOutput);
        Assert.Contains("- the last boot had warnings: guard: /workspace is not writable by the agent's user (uid 1000, gid 1000)", status.StandardOutput);
        Assert.Contains("securityContext.fsGroup: 1000", status.StandardOutput);
        Assert.Contains("- the last boot's report is not on the volume (the workspace was not usable (/workspace is not writable", status.StandardOutput);
        using var document = JsonDocument.Parse(json.StandardOutput);
        var lastBoot = document.RootElement.GetProperty("last_boot");
        Assert.Equal("warnings", lastBoot.GetProperty("outcome").GetString());
        Assert.Equal("/workspace", lastBoot.GetProperty("workspace").GetString());
        Assert.StartsWith("the workspace was not usable (/workspace is not writable", lastBoot.GetProperty("kept_aside").GetString());
        Assert.Equal("/tmp/packet-agent-1000/last-boot.json", document.RootElement.GetProperty("last_boot_path").GetString());
        Assert.Empty(Directory.GetFileSystemEntries(volume));
    }

    [RootFact]
    public void A_root_container_without_a_volume_keeps_its_report_where_status_in_it_finds_it()
    {
        Require.Root();

        string pod = Start(volume: null);
        var status = Exec(pod, "packet-agent", "status");

        Assert.Contains("warn: guard[1] /workspace does not exist", Engine.Run("logs", pod).StandardError);
        Assert.Contains("(report in /run/packet-agent/last-boot.json: not on the volume)", status.StandardOutput);
        Assert.Contains("- /workspace does not exist: no volume is mounted, nothing persists", status.StandardOutput);
        Assert.Contains("- the last boot had warnings: guard: /workspace does not exist", status.StandardOutput);
    }

    /// <summary>
    /// container/k8s/pod-non-root.yaml as the kubelet runs it: a root init container seeds the
    /// user's home with its owner, then the USER 1000 container mounts that home at /home/dev.
    /// </summary>
    [RootFact]
    public void A_non_root_image_on_a_volume_prepared_by_a_root_init_container_keeps_its_home()
    {
        Require.Root();
        string volume = _dir.Create("volume");

        var init = Engine.Run("run", "--rm", "--network", "none", "--user", "0", "--volume", $"{volume}:/workspace", "--entrypoint", "packet-agent",
            EngineImages.NonRoot, "boot", "--home", "/home/dev", "--strict", "--gpu", "off");
        Assert.True(init.ExitCode == 0, init.ToString());
        foreach (string path in new[] { "home", "home/.image-note", "bin", ".packet/boot.d", ".packet/user-1000" })
        {
            Assert.Equal(1000u, new Mono.Unix.UnixFileInfo(Path.Join(volume, path)).OwnerUserId);
        }

        Assert.Equal(0u, new Mono.Unix.UnixFileInfo(Path.Join(volume, ".packet")).OwnerUserId);

        for (int start = 1; start <= 2; start++)
        {
            string pod = Start(volume, EngineImages.NonRoot, ["--volume", $"{Path.Join(volume, "home")}:/home/dev"]);
            var shell = Exec(pod, "bash", "-ic", $"id -u; echo \"$HOME\"; cat ~/.image-note; echo start {start} >> ~/notes.txt; echo \"$PATH\"");
            var log = Engine.Run("logs", pod);

            Assert.True(shell.ExitCode == 0, shell.ToString());
            Assert.StartsWith($"1000\n/home/dev\nfrom the image\n", shell.StandardOutput);
            Assert.Contains("/workspace/bin", shell.StandardOutput);
            Assert.DoesNotContain("warn: guard", log.StandardError);
            Assert.Contains("boot finished", log.StandardError);
            Engine.MustRun("rm", "--force", "--time", "10", pod);
        }

        Assert.Equal("start 1\nstart 2\n", File.ReadAllText(Path.Join(volume, "home", "notes.txt")));
        Assert.Contains("\"outcome\":\"ok\"", File.ReadAllText(Path.Join(volume, ".packet", "user-1000", "last-boot.json")));
    }

    [RootFact]
    public void The_full_dev_image_takes_the_key_from_PUBLIC_KEY_and_keeps_its_host_key_across_three_container_replacements()
    {
        Require.Root();
        const string fullDev = "localhost/packet-full-dev:test";
        Engine.MustRun("build", "--network", "host", "--build-arg", $"BASE_IMAGE={EngineImages.Image}", "--tag", fullDev, Path.Join(RepositoryPaths.Root, "container/examples/full-dev"));
        string volume = _dir.Create("volume");
        HomeFixture.Write(volume, "bin/mytool", "#!/bin/sh\necho mytool from the volume\n", mode: "755");
        ChildProcess.MustSucceed("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", "me@laptop", "-f", _dir["key"]);
        string key = File.ReadAllText(_dir["key.pub"]).Trim();
        int port = FreePort();
        var fingerprints = new List<string>();

        for (int start = 1; start <= 3; start++)
        {
            string pod = Start(volume, fullDev, ["--publish", $"127.0.0.1:{port}:22", "--env", $"PUBLIC_KEY={key}", "--env", "HF_TOKEN=hf_from_the_pod_spec"], network: "bridge");
            var login = ChildProcess.Run("ssh", [
                "-F", "/dev/null", "-i", _dir["key"], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-o", $"UserKnownHostsFile={_dir["known_hosts"]}", "-o", $"StrictHostKeyChecking={(start == 1 ? "accept-new" : "yes")}",
                "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "root@127.0.0.1", "echo \"$HOME\"; mytool; printenv HF_TOKEN; echo login $(cat ~/logins 2>/dev/null | wc -l) >> ~/logins",
            ], timeout: TimeSpan.FromSeconds(30));

            Assert.True(login.ExitCode == 0, $"start {start}: {login}\n{Engine.Run("logs", pod)}");
            Assert.Equal("/root\nmytool from the volume\nhf_from_the_pod_spec\n", login.StandardOutput);
            fingerprints.Add(JsonDocument.Parse(File.ReadAllText(Path.Join(volume, ".packet", "ssh.json"))).RootElement.GetProperty("host_key_fingerprint").GetString()!);
            Engine.MustRun("rm", "--force", "--time", "10", pod);
        }

        Assert.Single(fingerprints.Distinct());
        Assert.Equal("login 0\nlogin 1\nlogin 2\n", File.ReadAllText(Path.Join(volume, "home", "logins")));
        Assert.Single(File.ReadAllLines(Path.Join(volume, "home", ".ssh", "authorized_keys")), line => line == key);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Starts a pod's container in the background from the image's ENTRYPOINT (and CMD) and waits for its boot to finish.</summary>
    private string Start(string? volume, string image = EngineImages.Image, string[]? options = null, string network = "none")
    {
        string name = $"pkt-{Guid.NewGuid():N}"[..16];
        _containers.Add(name);
        string[] mount = volume is null ? [] : ["--volume", $"{volume}:/workspace"];
        Engine.MustRun(["run", "--detach", "--name", name, "--network", network, .. mount, .. options ?? [], image]);
        var waited = Stopwatch.StartNew();
        while (!Engine.Run("logs", name).StandardError.Contains("boot[0] boot ", StringComparison.Ordinal))
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"{name} did not boot:\n{Engine.Run("logs", name)}");
            Thread.Sleep(50);
        }

        return name;
    }

    private ChildResult Exec(string container, params string[] command) => Engine.Run(["exec", container, .. command]);
}
