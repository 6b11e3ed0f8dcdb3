using Mono.Unix.Native;
using Packet.Agent.TestSupport;
using Xunit;
using Xunit.Abstractions;

namespace Packet.Agent.EndToEndTests;

/// <summary>The far end of home sizes: a million entries, streamed, in bounded memory.</summary>
/// <remarks>On a private tmpfs (root): a million creations and deletions on a journaled virtual
/// disk take minutes, and the agent's memory does not depend on the file system.</remarks>
public sealed class ScaleTests(ITestOutputHelper output)
{
    private const int Directories = 1000;
    private const int FilesPerDirectory = 999;
    private const long MaxPeakKilobytes = 32 * 1024;

    [RootFact]
    public void A_home_of_a_million_entries_is_seeded_in_at_most_32_MiB_of_memory()
    {
        Require.Root();
        using var tmpfs = new TmpfsMount();
        string home = tmpfs.Create("home");
        var started = System.Diagnostics.Stopwatch.StartNew();
        Generate(home);
        output.WriteLine($"generated in {started.Elapsed}");
        string workspace = tmpfs.Create("workspace");
        string peakFile = Path.Join(tmpfs.Path, "peak");

        var result = ChildProcess.Run(
            "/usr/bin/time",
            ["-f", "%M", "-o", peakFile, RepositoryPaths.AgentBinary, "boot", "--workspace", workspace, "--home", home, "--gpu", "off"],
            timeout: TimeSpan.FromMinutes(10));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("info: seed[2] copied 1,000,000 entries", result.StandardError);
        long peakKilobytes = long.Parse(File.ReadAllText(peakFile).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        output.WriteLine($"peak RSS {peakKilobytes} KiB; {result.ErrorLines.Single(line => line.Contains("seed[2] copied", StringComparison.Ordinal))}");
        Assert.True(peakKilobytes <= MaxPeakKilobytes, $"peak RSS {peakKilobytes} KiB is over {MaxPeakKilobytes} KiB");
        Assert.True(File.Exists(Path.Join(workspace, "home", $"d{Directories - 1:D4}", $"f{FilesPerDirectory - 1:D4}")));
    }

    /// <summary>1,000 directories of 999 small files each: 1,000,000 entries, made through descriptors to be quick.</summary>
    private static unsafe void Generate(string home)
    {
        int root = Syscall.open(home, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY);
        byte x = (byte)'x';
        for (int d = 0; d < Directories; d++)
        {
            string name = $"d{d:D4}";
            HomeFixture.Check(Syscall.mkdirat(root, name, FilePermissions.ACCESSPERMS));
            int directory = Syscall.openat(root, name, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY);
            for (int f = 0; f < FilesPerDirectory; f++)
            {
                int fd = Syscall.openat(directory, $"f{f:D4}", OpenFlags.O_WRONLY | OpenFlags.O_CREAT, FilePermissions.DEFFILEMODE);
                HomeFixture.Check(fd);
                if (f % 10 == 0)
                {
                    Syscall.write(fd, &x, 1);
                }

                Syscall.close(fd);
            }

            Syscall.close(directory);
        }

        Syscall.close(root);
    }
}
