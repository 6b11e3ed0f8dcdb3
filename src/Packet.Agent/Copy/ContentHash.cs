using System.IO.Hashing;

namespace Packet.Agent.Copy;

/// <summary>
/// Content hashes for change detection (the image manifest, first-boot hooks): XXH128, managed and
/// fast. Not cryptographic, and not needed to be: they tell "changed" from "unchanged", they do not
/// defend against anyone. (SHA-256 in .NET loads OpenSSL, several milliseconds on every boot, and a
/// library minimal CUDA images need not have.)
/// </summary>
public static class ContentHash
{
    public static string Of(ReadOnlySpan<byte> data) => Convert.ToHexStringLower(XxHash128.Hash(data));

    /// <summary>An incremental hash, for content read in pieces.</summary>
    public static XxHash128 Start() => new();

    public static string Finish(XxHash128 hash) => Convert.ToHexStringLower(hash.GetCurrentHash());
}
