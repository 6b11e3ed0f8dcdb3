using System.IO.Abstractions;
using System.Text;

namespace Packet.Agent.Sequence;

/// <summary>
/// Kubernetes shows the content of <c>/dev/termination-log</c> in <c>kubectl describe pod</c> when a
/// container fails. A failed boot writes its reason there (at most 4 KB, Kubernetes' limit).
/// </summary>
public sealed class TerminationMessage(IFileSystem fileSystem, string path, bool pathWasConfigured)
{
    public const int MaxBytes = 4096;

    /// <summary>Writes the reason; returns the error text if that failed (the caller logs it), else null.</summary>
    public string? Write(string reason)
    {
        // The default path only exists inside a Kubernetes container; elsewhere it would litter /dev.
        if (!pathWasConfigured && !fileSystem.File.Exists(path))
        {
            return null;
        }

        try
        {
            fileSystem.File.WriteAllBytes(path, Truncate(reason));
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"could not write the termination message to {path}: {e.Message}";
        }
    }

    /// <summary>UTF-8, cut at a character boundary to fit.</summary>
    public static byte[] Truncate(string reason)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(reason);
        if (bytes.Length <= MaxBytes)
        {
            return bytes;
        }

        int length = MaxBytes;
        while (length > 0 && (bytes[length] & 0xC0) == 0x80)
        {
            length--;
        }

        return bytes[..length];
    }
}
