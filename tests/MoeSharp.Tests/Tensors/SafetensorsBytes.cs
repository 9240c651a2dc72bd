using System.Buffers.Binary;
using System.Text;

namespace MoeSharp.Tests.Tensors;

/// <summary>Hand-built safetensors byte images, for feeding the reader exactly the malformation under test.</summary>
internal static class SafetensorsBytes
{
    /// <summary>
    /// Length prefix, the header text as UTF-8, then <paramref name="dataLength"/> data bytes (0, 1, 2, ...).
    /// </summary>
    public static byte[] Build(string header, int dataLength) => Build(Encoding.UTF8.GetBytes(header), dataLength);

    /// <summary>Length prefix, the raw header bytes, then <paramref name="dataLength"/> data bytes.</summary>
    public static byte[] Build(byte[] header, int dataLength, ulong? declaredHeaderLength = null)
    {
        var bytes = new byte[8 + header.Length + dataLength];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int i = 0; i < dataLength; i++)
            bytes[8 + header.Length + i] = (byte)i;
        return bytes;
    }
}
