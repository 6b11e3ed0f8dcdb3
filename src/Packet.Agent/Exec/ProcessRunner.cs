using System.ComponentModel;
using System.Diagnostics;
using System.Text;

namespace Packet.Agent.Exec;

/// <summary>How a child process ended: its exit code and (bounded) output, or why it did not finish.</summary>
public sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError, bool TimedOut, string? StartError = null);

/// <summary>Runs a program to completion with a time limit. The seam between the GPU check and nvidia-smi.</summary>
public interface IProcessRunner
{
    /// <summary>
    /// Runs <paramref name="fileName"/> with <paramref name="arguments"/>; after <paramref name="timeout"/>,
    /// or when <paramref name="cancellationToken"/> fires, kills it and everything it started.
    /// </summary>
    Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>The real runner: System.Diagnostics.Process, standard input closed, output read with a cap.</summary>
public sealed class ProcessRunner : IProcessRunner
{
    // A broken tool can print forever until it is killed; only this much of it is kept.
    private const int OutputLimit = 64 * 1024;
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(1);

    public async Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        using var process = new Process { StartInfo = startInfo };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            return new ProcessResult(-1, string.Empty, string.Empty, TimedOut: false, StartError: e.Message);
        }

        process.StandardInput.Close();
        var standardOutput = ReadBoundedAsync(process.StandardOutput.BaseStream);
        var standardError = ReadBoundedAsync(process.StandardError.BaseStream);
        bool timedOut = false;
        using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            limit.CancelAfter(timeout);
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                timedOut = !cancellationToken.IsCancellationRequested;
                KillTree(process);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }

        // A grandchild that inherited the pipes can keep them open after the child exits: do not wait on it forever.
        var drained = Task.WhenAll(standardOutput, standardError);
        await Task.WhenAny(drained, Task.Delay(DrainGrace, CancellationToken.None));
        string output = standardOutput.IsCompletedSuccessfully ? standardOutput.Result : string.Empty;
        string error = standardError.IsCompletedSuccessfully ? standardError.Result : string.Empty;
        return new ProcessResult(process.ExitCode, output, error, timedOut);
    }

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited between the timeout and the kill.
        }
    }

    private static async Task<string> ReadBoundedAsync(Stream stream)
    {
        var kept = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            int room = OutputLimit - (int)kept.Length;
            if (room > 0)
            {
                kept.Write(buffer, 0, Math.Min(room, read));
            }
        }

        return Encoding.UTF8.GetString(kept.GetBuffer(), 0, (int)kept.Length);
    }
}
