using System.Diagnostics;
using System.Text.Json;
using Mono.Unix;
using Packet.Agent.TestSupport;
using Xunit;

namespace Packet.Agent.EndToEndTests;

/// <summary>
/// container/k8s as an operator applies it, played on the real engine with <c>podman kube play</c>
/// (rootful podman 4.3 with runc), each manifest file as shipped: the images it names are the test
/// images tagged with those names (<see cref="EngineImages.ManifestImages"/>), and each pod runs on a
/// node network of its own (<see cref="NetworkNamespace"/>: podman publishes a containerPort on the
/// node, and port 22 of the test machine is not the test's to take). Where podman 4.3 differs from a
/// cluster (its own table, docs/kubernetes_support.md in containers/podman, and the issues named),
/// the test says so where it matters, and container/k8s/README.md tells the operator what a cluster does:
/// <list type="bullet">
/// <item>podman 4.3 restarts init containers under the pod's <c>restartPolicy: Always</c> and never
/// starts the main container (containers/podman#16343, fixed in 4.6 by #18481): a manifest with init
/// containers is played with <c>restartPolicy: Never</c>, the one change, made here to the text handed to podman;</item>
/// <item><c>subPath</c> on a claim is ignored (containers/podman#12929, fixed in 4.4 by #16803): the
/// whole volume is mounted at the live home, which the agent notices and says;</item>
/// <item><c>securityContext.fsGroup</c> and <c>terminationMessagePath</c> are not supported;</item>
/// <item>a Secret's <c>data</c> is taken as it is, not base64-decoded (containers/podman#16625, fixed in
/// 4.4 by #16631): the test's Secret holds the key's text where a cluster's holds its base64.</item>
/// </list>
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class KubeManifestTests(EngineImages images) : IDisposable
{
    private const string Claim = "packet-workspace";
    private const string Tool = "#!/bin/sh\necho mytool from the volume\n";
    private readonly TempDirectory _dir = new("kube");
    private NetworkNamespace? _node;

    /// <summary>The engine, on this test's node network.</summary>
    private Podman Node => images.Engine.InNetwork((_node ??= new NetworkNamespace()).Path);

    public void Dispose()
    {
        if (_node is not null)
        {
            Node.Run("pod", "rm", "--all", "--force", "--time", "0");
            Node.Run("volume", "rm", "--force", Claim);
            Node.Run("secret", "rm", "packet-ssh-keys");
            _node.Dispose();
        }

        _dir.Dispose();
    }

    private static string Manifest(string name) => Path.Join(RepositoryPaths.Root, "container/k8s", name);

    [RootFact]
    public void Every_image_the_manifests_name_is_one_the_tests_play_them_with()
    {
        Require.Root();

        var named = Directory.GetFiles(Path.Join(RepositoryPaths.Root, "container/k8s"), "*.yaml")
            .SelectMany(File.ReadAllLines)
            .Select(line => line.Trim())
            .Where(line => line.StartsWith("image:", StringComparison.Ordinal))
            .Select(line => line["image:".Length..].Trim())
            .ToHashSet(StringComparer.Ordinal);

        Assert.Equal(images.ManifestImages().Keys.Order(StringComparer.Ordinal), named.Order(StringComparer.Ordinal));
    }

    [RootFact]
    public void The_entrypoint_pod_seeds_its_claim_finds_the_volumes_tools_and_keeps_a_file_across_kube_down_and_a_second_play()
    {
        Require.Root();
        images.ManifestImages();
        Play("pvc.yaml");
        Play("pod-entrypoint.yaml");
        string first = WaitForBoot("packet-dev-dev");
        string volume = VolumePath();
        HomeFixture.Write(volume, "bin/mytool", Tool, mode: "755");

        var tool = Node.Run("exec", "packet-dev-dev", "mytool");
        var written = Node.Run("exec", "packet-dev-dev", "sh", "-c", "echo written in the pod > ~/notes.txt");
        Node.MustRun("kube", "down", Manifest("pod-entrypoint.yaml"));
        var gone = Node.Run("pod", "exists", "packet-dev");
        Play("pod-entrypoint.yaml");
        string second = WaitForBoot("packet-dev-dev");
        var kept = Node.Run("exec", "packet-dev-dev", "cat", "/root/notes.txt");

        Assert.True(File.Exists(Path.Join(volume, "home", ".packet-init")), first);
        Assert.Contains("info: gpu[5] 1 GPU found", first); // PACKET_GPU=require, met by the stand-in nvidia-smi
        Assert.Contains("info: exec[8] linked /root to /workspace/home", first);
        Assert.True(tool.ExitCode == 0 && tool.StandardOutput == "mytool from the volume\n", $"podman exec packet-dev-dev mytool: {tool}");
        Assert.True(written.ExitCode == 0, written.ToString());
        Assert.Equal(1, gone.ExitCode);
        Assert.Contains("info: seed[2] skipped: ", second);
        Assert.True(kept.ExitCode == 0 && kept.StandardOutput == "written in the pod\n", $"after kube down and a second play: {kept}\n{second}");
    }

    [RootFact]
    public void The_init_container_seeds_the_claim_and_the_main_container_finds_it_seeded()
    {
        Require.Root();
        images.ManifestImages();
        Play("pvc.yaml");

        var played = PlayWithInitContainers("pod-init-container.yaml");
        string main = WaitForBoot("packet-dev-init-dev");
        string volume = VolumePath();

        Assert.True(played.ExitCode == 0, played.ToString());
        Assert.True(File.Exists(Path.Join(volume, "home", ".packet-init")));
        var init = EarlierReport(volume, generation: 1);
        Assert.Equal("ok", init.GetProperty("outcome").GetString());
        Assert.Equal(["guard ok", "seed ok", "marker ok", "profile ok", "gpu skipped", "hooks skipped", "ssh skipped"], Steps(init));
        Assert.Contains("info: seed[2] skipped: ", main);
        Assert.Contains("info: gpu[5] 1 GPU found", main);

        // podman 4.3 ignores subPath on a claim (containers/podman#12929): /root is the whole volume, and the agent says so and what a cluster does instead.
        Assert.Contains("warn: exec[8] HOME=/workspace/home for the command only: /root is the workspace itself (/workspace), not its home: the whole volume is mounted there", main);
    }

    [RootFact]
    public void A_strict_init_container_that_cannot_seed_fails_with_its_reason_and_the_main_container_never_starts()
    {
        Require.Root();
        images.ManifestImages();

        // A claim too small for the image's home (one page of tmpfs): a strict seed refuses to start.
        Node.MustRun("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=nr_blocks=1", Claim);
        var played = PlayWithInitContainers("pod-init-container.yaml");
        var init = Node.Run("logs", "packet-dev-init-seed-home");
        string main = Node.MustRun("inspect", "--format", "{{.State.Status}}", "packet-dev-init-dev").Trim();

        Assert.NotEqual(0, played.ExitCode);
        Assert.Contains("exited with code 1", played.StandardError);
        Assert.Contains("fail: seed[2] the home needs ", init.StandardError);
        Assert.Contains("the boot fails (--strict)", init.StandardError);
        Assert.Contains("fail: boot[0] boot failed", init.StandardError);
        Assert.Equal("created", main);

        // A cluster shows the reason in kubectl describe pod from the termination message file, which
        // podman does not make (terminationMessagePath: "no" in its kubernetes_support.md); that the
        // agent writes it is held by EngineTests, with the file bind-mounted as the kubelet mounts it.
    }

    [RootFact]
    public void The_non_root_pod_runs_as_its_user_on_a_home_the_root_init_container_gave_it()
    {
        Require.Root();
        images.ManifestImages();
        Play("pvc.yaml");
        // A hook both boots run (the root init container's and the user's own agent): each records who ran it.
        HomeFixture.Write(VolumePath(), "setup.sh", "#!/bin/sh\necho \"$(id -u)\" >> \"$HOME/hook-runs\"\n", mode: "755");

        var played = PlayWithInitContainers("pod-non-root.yaml");
        string main = WaitForBoot("packet-dev-nonroot-dev");
        var user = Node.Run("exec", "packet-dev-nonroot-dev", "sh", "-c", "id -u; echo written by $(id -u) > /workspace/home/notes.txt && cat /workspace/home/.image-note");
        string volume = VolumePath();

        Assert.True(played.ExitCode == 0, played.ToString());
        Assert.True(user.ExitCode == 0, user.ToString());
        Assert.Equal("1000\nfrom the image\n", user.StandardOutput);
        foreach (string path in new[] { "home", "home/.image-note", "home/notes.txt", "bin", ".packet/boot.d", ".packet/first-boot.d", ".packet/user-1000", ".packet/user-1000/last-boot.json" })
        {
            Assert.Equal(1000u, new Mono.Unix.UnixFileInfo(Path.Join(volume, path)).OwnerUserId);
        }

        // Root's part stays root's: the user cannot rename or plant anything in it.
        foreach (string path in new[] { ".packet", ".packet/lock", ".packet/last-boot.json" })
        {
            Assert.Equal(0u, new Mono.Unix.UnixFileInfo(Path.Join(volume, path)).OwnerUserId);
        }

        Assert.Equal(FileAccessPermissions.UserReadWriteExecute | FileAccessPermissions.GroupRead | FileAccessPermissions.GroupExecute | FileAccessPermissions.OtherRead | FileAccessPermissions.OtherExecute, new Mono.Unix.UnixFileInfo(Path.Join(volume, ".packet")).FileAccessPermissions);
        Assert.Equal("1000\n1000\n", File.ReadAllText(Path.Join(volume, "home/hook-runs")));
        Assert.DoesNotContain("warn: guard[1]", main);
        Assert.DoesNotContain("warn: hooks[6]", main);
        Assert.Contains("boot finished", main);

        // podman does not apply fsGroup (kubernetes_support.md): the claim's top stays root's, and the
        // root init container's seed alone gives the user what it writes; a cluster also makes it group 1000's.
        Assert.Equal(0u, new Mono.Unix.UnixFileInfo(volume).OwnerUserId);
    }

    [RootFact]
    public void The_ssh_pod_takes_its_key_from_the_secret_and_keeps_its_host_key_across_kube_down_and_a_second_play()
    {
        Require.Root();
        images.ManifestImages();
        ChildProcess.MustSucceed("ssh-keygen", "-q", "-t", "ed25519", "-N", string.Empty, "-C", "me@laptop", "-f", _dir["key"]);
        string key = File.ReadAllText(_dir["key.pub"]).Trim();

        // kubectl create secret generic packet-ssh-keys --from-file=me.pub=KEY, as podman 4.3 reads a Secret (data verbatim, containers/podman#16625).
        File.WriteAllText(_dir["secret.yaml"], $"apiVersion: v1\nkind: Secret\nmetadata:\n  name: packet-ssh-keys\ndata:\n  me.pub: \"{key}\"\n");
        Node.MustRun("secret", "create", "packet-ssh-keys", _dir["secret.yaml"]);
        Play("pvc.yaml");
        Play("pod-ssh.yaml");
        string first = WaitForBoot("packet-dev-ssh-dev");
        var login = Login(acceptNew: true);
        Node.MustRun("kube", "down", Manifest("pod-ssh.yaml"));
        Play("pod-ssh.yaml");
        string second = WaitForBoot("packet-dev-ssh-dev");
        var again = Login(acceptNew: false);

        Assert.Contains("info: ssh[7] sshd (pid ", first);
        Assert.Contains("1 key from the pod", first);
        Assert.True(login.ExitCode == 0, $"{login}\n{first}");
        Assert.Equal("/root\nroot\n", login.StandardOutput);
        Assert.Contains("kept in /workspace/.packet/ssh", second);
        Assert.True(again.ExitCode == 0, $"the host key changed across kube down and a second play: {again}\n{second}");
    }

    /// <summary>ssh root@ the node's port 22, which the pod's containerPort is published on; with the host key known from the first login after that.</summary>
    private ChildResult Login(bool acceptNew) => _node!.Run("ssh", [
        "-F", "/dev/null", "-i", _dir["key"], "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", $"UserKnownHostsFile={_dir["known_hosts"]}", "-o", $"StrictHostKeyChecking={(acceptNew ? "accept-new" : "yes")}",
        "-p", "22", "root@127.0.0.1", "echo \"$HOME\"; id -un",
    ], TimeSpan.FromSeconds(30));

    private void Play(string manifest) => Node.MustRun("kube", "play", Manifest(manifest));

    /// <summary>The manifest with <c>restartPolicy: Never</c> for podman 4.3 (containers/podman#16343: see the class).</summary>
    private ChildResult PlayWithInitContainers(string manifest)
    {
        string text = File.ReadAllText(Manifest(manifest));
        Assert.Contains("  restartPolicy: Always\n", text);
        return Node.RunWithInput(text.Replace("  restartPolicy: Always\n", "  restartPolicy: Never\n", StringComparison.Ordinal), "kube", "play", "-");
    }

    /// <summary>The container's log once its boot has ended (the agent's closing line).</summary>
    private string WaitForBoot(string container)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            string log = Node.Run("logs", container).StandardError;
            if (log.Contains("boot[0] boot ", StringComparison.Ordinal))
            {
                return log;
            }

            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), $"{container} did not boot:\n{log}");
            Thread.Sleep(100);
        }
    }

    private string VolumePath() => Node.MustRun("volume", "inspect", "--format", "{{.Mountpoint}}", Claim).Trim();

    private static JsonElement EarlierReport(string volume, int generation) =>
        JsonDocument.Parse(File.ReadAllText(Path.Join(volume, ".packet", $"last-boot.{generation}.json"))).RootElement.Clone();

    private static string[] Steps(JsonElement report) =>
        report.GetProperty("steps").EnumerateArray().Select(step => $"{step.GetProperty("name").GetString()} {step.GetProperty("outcome").GetString()}").ToArray();
}
