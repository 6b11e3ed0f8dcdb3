using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;

namespace Packet.Agent.IntegrationTests;

/// <summary>Runs the copy engine on real directories, as the seed step does but without a workspace around it.</summary>
public static class CopyHarness
{
    public static CopyReport Copy(string source, string destination, IPosix? posix = null, string? existing = null, int workers = 4, List<CopyProblem>? problems = null)
    {
        Directory.CreateDirectory(destination);
        int sourceFd = Open(source);
        int destinationFd = Open(destination);
        int existingFd = existing is null ? -1 : Open(existing);
        var report = new CopyReport();
        try
        {
            var options = new CopyOptions
            {
                Workers = workers,
                PreserveOwnership = Platform.IsRoot,
                OnProblem = problem =>
                {
                    lock (report)
                    {
                        problems?.Add(problem);
                    }
                },
            };
            new TreeCopier(posix ?? new FaultyPosix(), options).Copy(sourceFd, destinationFd, existingFd, report);
        }
        finally
        {
            Syscall.close(sourceFd);
            Syscall.close(destinationFd);
            if (existingFd >= 0)
            {
                Syscall.close(existingFd);
            }
        }

        Xunit.Assert.Empty(OpenDescriptors.Under(source));
        Xunit.Assert.Empty(OpenDescriptors.Under(destination));
        return report;
    }

    public static int Open(string directory)
    {
        int fd = Syscall.open(directory, OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_CLOEXEC);
        HomeFixture.Check(fd);
        return fd;
    }
}
