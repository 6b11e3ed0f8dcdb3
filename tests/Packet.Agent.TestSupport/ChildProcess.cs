using System.Diagnostics;
using System.Text;

namespace Packet.Agent.TestSupport;

/// <summary>How a child process ended.</summary>
public sealed record ChildResult(int ExitCode, string StandardOutput, string StandardError, int ProcessId)
{
    public IReadOnlyList<string> ErrorLines => StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{StandardOutput}\n--- stderr\n{StandardError}";
}

/// <summary>Runs a program to completion with a deadline, so a hung agent fails its test instead of hanging CI.</summary>
public static class ChildProcess
{
    public static ChildResult Run(string fileName, IEnumerable<string> arguments, IDictionary<string, string?>? environment = null, TimeSpan? timeout = null, string? standardInput = null)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (string argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                startInfo.Environment.Remove(name);
            }
            else
            {
                startInfo.Environment[name] = value;
            }
        }

        using var process = Process.Start(startInfo)!;
        int pid = process.Id;
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
        }

        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"{fileName} {string.Join(' ', arguments)} did not finish in time\n{output.Result}\n{error.Result}");
        }

        process.WaitForExit();
        return new ChildResult(process.ExitCode, output.Result, error.Result, pid);
    }

    public static ChildResult Shell(string script, TimeSpan? timeout = null) => Run("/bin/sh", ["-c", script], timeout: timeout);

    public static void MustSucceed(string fileName, params string[] arguments)
    {
        var result = Run(fileName, arguments);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} failed: {result}");
        }
    }

    public static string Quote(string text) => "'" + text.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public static string Lines(params string[] lines) => string.Join('\n', lines) + "\n";

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
