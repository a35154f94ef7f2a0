-- keysim.lua: what Wireshark 4.0 does not decode in a keysim capture.
--
--  * USIM/ISIM AUTHENTICATE in the GBA context (TS 31.102 §7.1.2.4: INS 88, P2 84; bootstrapping
--    mode tag DD with RAND and AUTN, answered DB RES or DC AUTS; NAF derivation mode tag DE with
--    NAF_Id and IMPI, answered DB Ks_ext_NAF) and in the MBMS context (INS 89, P2 85, data in tag
--    53: mode byte, then the MIKEY message of an MSK update or MTK generation, answered 53 { DB ...
--    MTK, salt }), carried as GSMTAP SIM on UDP 4729. Every other GSMTAP frame goes to Wireshark's
--    own GSMTAP dissector.
--  * MIKEY (RFC 3830) as MBMS uses it: the empty CS ID map (RFC 4563 §5, map type 1), the Key ID
--    information extension (RFC 4563 §4, General Extension type 3: MBMS Key Domain ID, MSK ID, MTK
--    ID) and the COUNTER timestamp (RFC 3830 §6.6, TS type 2); the data types of MIKEY-TICKET
--    (RFC 6043 §6.1: 11-16).
--  * The MBMS XML bodies of TS 33.246 Annex D (application/mbms-*+xml) as XML.
--  * a=key-mgmt:mikey at media level of an SDP (RFC 4567 §3.1 allows both levels): the MIKEY
--    message inside is decoded.
--
-- Install: copy this file into Wireshark's personal plugin folder,
--   mkdir -p ~/.local/lib/wireshark/plugins && cp wireshark/keysim.lua ~/.local/lib/wireshark/plugins/
-- or load it for one run: tshark -X lua_script:wireshark/keysim.lua -r FILE.pcapng

-- Loaded once: installed in the plugin folder and given again with -X lua_script, the second copy
-- finds the first one's dissector registered and stands aside.
local already, earlier = pcall(Dissector.get, "keysim_gsmtap")
if already and earlier then return end

-- GSMTAP has no dissector by name: take the one UDP 4729 has before this file replaces it.
local gsmtap_dissector = DissectorTable.get("udp.port"):get_dissector(4729)
local mikey_dissector = Dissector.get("mikey")
local xml_dissector = Dissector.get("xml")

---------------------------------------------------------------------------------------------------
-- AUTHENTICATE in the GBA and MBMS contexts

local uicc = Proto("keysim_uicc", "UICC AUTHENTICATE (TS 31.102, GBA and MBMS contexts)")
local context_names = { [4] = "GBA context", [5] = "MBMS context" }
local mode_names = { [1] = "MSK update", [2] = "MTK generation", [3] = "MSK deletion", [4] = "MUK deletion" }
local F = {
    ins = ProtoField.uint8("keysim_uicc.ins", "INS", base.HEX),
    p1 = ProtoField.uint8("keysim_uicc.p1", "P1", base.HEX),
    p2 = ProtoField.uint8("keysim_uicc.p2", "P2", base.HEX),
    context = ProtoField.uint8("keysim_uicc.context", "Security context", base.DEC, context_names, 0x07),
    tag = ProtoField.uint8("keysim_uicc.tag", "Tag", base.HEX),
    rand = ProtoField.bytes("keysim_uicc.rand", "RAND"),
    autn = ProtoField.bytes("keysim_uicc.autn", "AUTN"),
    naf_id = ProtoField.bytes("keysim_uicc.naf_id", "NAF_Id"),
    naf_fqdn = ProtoField.string("keysim_uicc.naf_fqdn", "NAF FQDN"),
    ua_protocol = ProtoField.bytes("keysim_uicc.ua_protocol", "Ua security protocol identifier"),
    impi = ProtoField.string("keysim_uicc.impi", "IMPI"),
    res = ProtoField.bytes("keysim_uicc.res", "RES"),
    auts = ProtoField.bytes("keysim_uicc.auts", "AUTS"),
    ks_ext_naf = ProtoField.bytes("keysim_uicc.ks_ext_naf", "Ks_ext_NAF"),
    mode = ProtoField.uint8("keysim_uicc.mbms_mode", "MBMS mode", base.HEX, mode_names),
    mikey = ProtoField.bytes("keysim_uicc.mikey", "MIKEY message"),
    key_domain = ProtoField.bytes("keysim_uicc.key_domain_id", "Key Domain ID"),
    key_group = ProtoField.bytes("keysim_uicc.key_group", "Key Group"),
    muk_id = ProtoField.bytes("keysim_uicc.muk_id", "MUK ID"),
    mtk = ProtoField.bytes("keysim_uicc.mtk", "MTK"),
    salt = ProtoField.bytes("keysim_uicc.salt", "Salt"),
    response = ProtoField.bytes("keysim_uicc.response", "Response data"),
    sw = ProtoField.uint16("keysim_uicc.sw", "Status word", base.HEX),
}
uicc.fields = F

-- One length-value field at offset; returns the range and the next offset, or nil.
local function lv(tvb, offset, limit)
    if offset >= limit then return nil end
    local len = tvb(offset, 1):uint()
    if offset + 1 + len > limit or len == 0 then return nil, offset + 1 + len end
    return tvb(offset + 1, len), offset + 1 + len
end

-- A BER-TLV length at offset: value length and header size, or nil.
local function ber_len(tvb, offset, limit)
    if offset >= limit then return nil end
    local l = tvb(offset, 1):uint()
    if l < 0x80 then return l, 1 end
    if l == 0x81 and offset + 1 < limit then return tvb(offset + 1, 1):uint(), 2 end
    if l == 0x82 and offset + 2 < limit then return tvb(offset + 1, 2):uint(), 3 end
    return nil
end

local function gba_command(tvb, pinfo, tree, at, stop)
    local tag = tvb(at, 1):uint()
    tree:add(F.tag, tvb(at, 1))
    if tag == 0xDD then
        local rand, next1 = lv(tvb, at + 1, stop)
        local autn = next1 and lv(tvb, next1, stop)
        if rand then tree:add(F.rand, rand) end
        if autn then tree:add(F.autn, autn) end
        return "AUTHENTICATE GBA bootstrap"
    elseif tag == 0xDE then
        local naf, next1 = lv(tvb, at + 1, stop)
        local impi = next1 and lv(tvb, next1, stop)
        if naf then
            local n = tree:add(F.naf_id, naf)
            if naf:len() > 5 then
                n:add(F.naf_fqdn, naf(0, naf:len() - 5))
                n:add(F.ua_protocol, naf(naf:len() - 5, 5))
            end
        end
        if impi then tree:add(F.impi, impi) end
        return "AUTHENTICATE GBA NAF derivation"
    end
    return "AUTHENTICATE GBA context"
end

local function gba_response(tvb, tree, at, stop, naf)
    if at >= stop then return "" end
    local tag = tvb(at, 1):uint()
    local value = lv(tvb, at + 1, stop)
    if tag == 0xDB and value then
        tree:add(naf and F.ks_ext_naf or F.res, value)
        return naf and ", Ks_ext_NAF" or ", RES"
    elseif tag == 0xDC and value then
        tree:add(F.auts, value)
        return ", synchronisation failure (AUTS)"
    end
    tree:add(F.response, tvb(at, stop - at))
    return ""
end

local function mbms_command(tvb, pinfo, tree, at, stop)
    if tvb(at, 1):uint() ~= 0x53 then return "AUTHENTICATE MBMS context" end
    tree:add(F.tag, tvb(at, 1))
    local len, hdr = ber_len(tvb, at + 1, stop)
    if not len or at + 1 + hdr + len > stop or len < 1 then return "AUTHENTICATE MBMS context" end
    local body = at + 1 + hdr
    local mode = tvb(body, 1):uint()
    tree:add(F.mode, tvb(body, 1))
    local rest = len - 1
    if (mode == 1 or mode == 2) and rest > 0 then
        local m = tvb(body + 1, rest)
        tree:add(F.mikey, m)
        if mikey_dissector then mikey_dissector:call(m:tvb(), pinfo, tree) end
    elseif mode == 3 and rest >= 5 then
        tree:add(F.key_domain, tvb(body + 1, 3))
        tree:add(F.key_group, tvb(body + 4, 2))
    elseif mode == 4 and rest > 0 then
        tree:add(F.muk_id, tvb(body + 1, rest))
    end
    return "AUTHENTICATE MBMS " .. (mode_names[mode] or string.format("mode %02X", mode))
end

local function mbms_response(tvb, tree, at, stop, mode_is_mtk)
    if at >= stop or tvb(at, 1):uint() ~= 0x53 then
        if at < stop then tree:add(F.response, tvb(at, stop - at)) end
        return ""
    end
    local len, hdr = ber_len(tvb, at + 1, stop)
    if not len or at + 1 + hdr + len > stop or len < 1 then return "" end
    local body = at + 1 + hdr
    tree:add(F.tag, tvb(at, 1))
    if tvb(body, 1):uint() == 0xDB then
        -- MTK generation: DB followed directly by MTK || salt (TS 31.102 §7.1.2.5, no length byte).
        if mode_is_mtk and len - 1 >= 16 then
            tree:add(F.mtk, tvb(body + 1, 16))
            if len - 1 > 16 then tree:add(F.salt, tvb(body + 17, len - 17)) end
            return ", MTK"
        elseif len > 1 then
            tree:add(F.response, tvb(body + 1, len - 1))
        end
        return ", success"
    end
    return ""
end

local gsmtap_sim = Proto("keysim_gsmtap", "GSMTAP (keysim: GBA and MBMS AUTHENTICATE)")
function gsmtap_sim.dissector(tvb, pinfo, tree)
    local n = tvb:len()
    -- GSMTAP v2 header: version, header length in 32-bit words, type (4 = SIM).
    if n >= 16 and tvb(0, 1):uint() == 2 and tvb(2, 1):uint() == 4 then
        local h = tvb(1, 1):uint() * 4
        if h >= 16 and n >= h + 7 then
            local cla, ins, p2 = tvb(h, 1):uint(), tvb(h + 1, 1):uint(), tvb(h + 3, 1):uint()
            local ctx = p2 % 8
            local p3 = tvb(h + 4, 1):uint()
            local data_at, data_end = h + 5, h + 5 + p3
            if cla ~= 0xA0 and ((ins == 0x88 and ctx == 4) or (ins == 0x89 and ctx == 5)) and p3 > 0
                and data_end + 2 <= n then
                pinfo.cols.protocol = "GSM SIM"
                local t = tree:add(uicc, tvb(h, n - h))
                t:add(F.ins, tvb(h + 1, 1))
                t:add(F.p1, tvb(h + 2, 1))
                t:add(F.p2, tvb(h + 3, 1))
                t:add(F.context, tvb(h + 3, 1))
                local name, result
                if ins == 0x88 then
                    name = gba_command(tvb, pinfo, t, data_at, data_end)
                    result = gba_response(tvb, t, data_end, n - 2, tvb(data_at, 1):uint() == 0xDE)
                else
                    name = mbms_command(tvb, pinfo, t, data_at, data_end)
                    result = mbms_response(tvb, t, data_end, n - 2, name:find("MTK", 1, true) ~= nil)
                end
                local sw = tvb(n - 2, 2):uint()
                t:add(F.sw, tvb(n - 2, 2))
                t:append_text(": " .. name)
                pinfo.cols.info = string.format("%s%s (SW %04X)", name, result, sw)
                return n
            end
        end
    end
    return gsmtap_dissector:call(tvb, pinfo, tree)
end
DissectorTable.get("udp.port"):add(4729, gsmtap_sim)

---------------------------------------------------------------------------------------------------
-- MIKEY: what RFC 4563 and RFC 6043 add

local mk = Proto("keysim_mikey", "MIKEY for MBMS and MIKEY-TICKET (RFC 4563, RFC 6043)")
local data_types = {
    [0] = "Initiator's pre-shared key", [1] = "Verification message of a pre-shared key",
    [2] = "Initiator's public-key transport", [3] = "Verification message of a public-key message",
    [4] = "Initiator's DH exchange", [5] = "Responder's DH exchange", [6] = "Error message",
    [11] = "REQUEST_INIT_PSK", [12] = "REQUEST_INIT_PK", [13] = "REQUEST_RESP", [14] = "TRANSFER_INIT",
    [15] = "TRANSFER_RESP", [16] = "RESOLVE_INIT_PSK", [17] = "RESOLVE_INIT_PK", [18] = "RESOLVE_RESP",
}
local map_types = { [0] = "SRTP-ID", [1] = "Empty map (RFC 4563)", [2] = "GENERIC-ID (RFC 6043)" }
local key_id_types = { [0] = "MBMS Key Domain ID", [1] = "MSK ID", [2] = "MTK ID" }
local payload_names = {
    [0] = "Last payload", [1] = "KEMAC", [2] = "PKE", [3] = "DH", [4] = "SIGN", [5] = "T", [6] = "ID",
    [7] = "CERT", [8] = "CHASH", [9] = "V", [10] = "SP", [11] = "RAND", [12] = "ERR", [13] = "TR",
    [14] = "IDR", [15] = "RANDR", [16] = "TP", [17] = "TICKET", [20] = "Key data", [21] = "General Extension",
}
local ts_types = { [0] = "NTP-UTC", [1] = "NTP", [2] = "COUNTER", [3] = "NTP-UTC-32" }
local ts_lengths = { [0] = 8, [1] = 8, [2] = 4, [3] = 4 }
local roles = { [1] = "Initiator", [2] = "Responder", [3] = "KMS", [4] = "Pre-Shared Key", [5] = "Application",
    [6] = "Initiator's KMS", [7] = "Responder's KMS" }
local ts_roles = { [1] = "Time of issue (TRi)", [2] = "Start of validity (TRs)", [3] = "End of validity (TRe)",
    [4] = "Rekeying interval (TRr)" }
local mac_lengths = { [0] = 0, [1] = 20, [2] = 16, [3] = 32 }
local M = {
    data_type = ProtoField.uint8("keysim_mikey.data_type", "Data type", base.DEC, data_types),
    csb_id = ProtoField.uint32("keysim_mikey.csb_id", "CSB ID", base.HEX),
    map_type = ProtoField.uint8("keysim_mikey.cs_id_map_type", "CS ID map type", base.DEC, map_types),
    payload = ProtoField.uint8("keysim_mikey.payload", "Payload", base.DEC, payload_names),
    key_id_type = ProtoField.uint8("keysim_mikey.key_id_type", "Key ID type", base.DEC, key_id_types),
    key_id = ProtoField.bytes("keysim_mikey.key_id", "Key ID"),
    key_domain = ProtoField.bytes("keysim_mikey.key_domain_id", "MBMS Key Domain ID"),
    msk_id = ProtoField.bytes("keysim_mikey.msk_id", "MSK ID"),
    mtk_id = ProtoField.uint32("keysim_mikey.mtk_id", "MTK ID"),
    ts_type = ProtoField.uint8("keysim_mikey.ts_type", "TS type", base.DEC, ts_types),
    counter = ProtoField.uint32("keysim_mikey.ts_counter", "Timestamp COUNTER"),
    ts_value = ProtoField.bytes("keysim_mikey.ts_value", "TS value"),
    ts_role = ProtoField.uint8("keysim_mikey.ts_role", "TS role", base.DEC, ts_roles),
    role = ProtoField.uint8("keysim_mikey.role", "Role", base.DEC, roles),
    id_type = ProtoField.uint8("keysim_mikey.id_type", "ID type", base.DEC, { [0] = "NAI", [1] = "URI", [2] = "Byte string" }),
    id = ProtoField.string("keysim_mikey.id", "ID"),
    rand = ProtoField.bytes("keysim_mikey.rand", "RAND"),
    ticket_type = ProtoField.uint16("keysim_mikey.ticket_type", "Ticket type", base.DEC,
        { [1] = "MIKEY base ticket", [2] = "3GPP base ticket" }),
    tp_data = ProtoField.bytes("keysim_mikey.tp_data", "TP data"),
    ticket_data = ProtoField.bytes("keysim_mikey.ticket_data", "Ticket data"),
    initiator_data = ProtoField.bytes("keysim_mikey.initiator_data", "Initiator data"),
    encr_data = ProtoField.bytes("keysim_mikey.encr_data", "Encrypted data"),
    mac = ProtoField.bytes("keysim_mikey.mac", "MAC"),
    data = ProtoField.bytes("keysim_mikey.data", "Data"),
    err = ProtoField.uint8("keysim_mikey.err", "Error no"),
}
mk.fields = M
local E = { short = ProtoExpert.new("keysim_mikey.short", "MIKEY payload runs past the message", expert.group.MALFORMED, expert.severity.WARN) }
mk.experts = E

local mikey_field = Field.new("mikey")

-- One payload chain from `at` to `n`, starting with payload type `kind`; false when it does not fit.
local function walk_chain(r, t, kind, at, n)
    while kind ~= 0 do
        if at + 1 > n then return false end
        local start = at
        local next_kind = r(at, 1):uint()
        local function need(k) return at + k <= n end
        local p = t:add(M.payload, r(at, 1), kind)
        if kind == 21 then -- General Extension
            if not need(4) then return false end
            local ext_type, len = r(at + 1, 1):uint(), r(at + 2, 2):uint()
            if not need(4 + len) then return false end
            if ext_type == 3 then
                p:append_text(": Key ID information (RFC 4563)")
                local k, e = at + 4, at + 4 + len
                while k + 2 <= e do
                    local kt, kl = r(k, 1):uint(), r(k + 1, 1):uint()
                    if k + 2 + kl > e then return false end
                    p:add(M.key_id_type, r(k, 1))
                    if kl > 0 then
                        local v = r(k + 2, kl)
                        p:add(M.key_id, v)
                        if kt == 0 then p:add(M.key_domain, v)
                        elseif kt == 1 then p:add(M.msk_id, v)
                        elseif kt == 2 and kl <= 4 then p:add(M.mtk_id, v) end
                    end
                    k = k + 2 + kl
                end
            elseif len > 0 then
                p:add(M.data, r(at + 4, len))
            end
            at = at + 4 + len
        elseif kind == 5 or kind == 13 then -- T, TR
            local o = (kind == 13) and 1 or 0
            if not need(2 + o) then return false end
            if o == 1 then p:add(M.ts_role, r(at + 1, 1)) end
            local ts_type = r(at + 1 + o, 1):uint()
            local len = ts_lengths[ts_type]
            if not len or not need(2 + o + len) then return false end
            p:add(M.ts_type, r(at + 1 + o, 1))
            if ts_type == 2 then p:add(M.counter, r(at + 2 + o, 4)) else p:add(M.ts_value, r(at + 2 + o, len)) end
            at = at + 2 + o + len
        elseif kind == 11 or kind == 15 then -- RAND, RANDR
            local o = (kind == 15) and 1 or 0
            if not need(2 + o) then return false end
            if o == 1 then p:add(M.role, r(at + 1, 1)) end
            local len = r(at + 1 + o, 1):uint()
            if not need(2 + o + len) then return false end
            if len > 0 then p:add(M.rand, r(at + 2 + o, len)) end
            at = at + 2 + o + len
        elseif kind == 6 or kind == 14 then -- ID, IDR
            local o = (kind == 14) and 1 or 0
            if not need(4 + o) then return false end
            if o == 1 then p:add(M.role, r(at + 1, 1)) end
            p:add(M.id_type, r(at + 1 + o, 1))
            local len = r(at + 2 + o, 2):uint()
            if not need(4 + o + len) then return false end
            if len > 0 then p:add(M.id, r(at + 4 + o, len)) end
            at = at + 4 + o + len
        elseif kind == 16 or kind == 17 then -- TP, TICKET
            if not need(10) then return false end
            p:add(M.ticket_type, r(at + 1, 2))
            local len = r(at + 8, 2):uint()
            if not need(10 + len) then return false end
            if len > 0 then
                local d = p:add(M.tp_data, r(at + 10, len))
                if not walk_chain(r, d, r(at + 10, 1):uint(), at + 11, at + 10 + len) then return false end
            end
            at = at + 10 + len
            if kind == 17 then
                for _, f in ipairs({ M.ticket_data, M.initiator_data }) do
                    if not need(2) then return false end
                    local l = r(at, 2):uint()
                    if not need(2 + l) then return false end
                    if l > 0 then p:add(f, r(at + 2, l)) end
                    at = at + 2 + l
                end
            end
        elseif kind == 1 then -- KEMAC
            if not need(4) then return false end
            local len = r(at + 2, 2):uint()
            if not need(5 + len) then return false end
            if len > 0 then p:add(M.encr_data, r(at + 4, len)) end
            local mac_len = mac_lengths[r(at + 4 + len, 1):uint()]
            if not mac_len or not need(5 + len + mac_len) then return false end
            if mac_len > 0 then p:add(M.mac, r(at + 5 + len, mac_len)) end
            at = at + 5 + len + mac_len
        elseif kind == 9 then -- V
            if not need(2) then return false end
            local mac_len = mac_lengths[r(at + 1, 1):uint()]
            if not mac_len or not need(2 + mac_len) then return false end
            if mac_len > 0 then p:add(M.mac, r(at + 2, mac_len)) end
            at = at + 2 + mac_len
        elseif kind == 10 then -- SP
            if not need(5) then return false end
            local len = r(at + 3, 2):uint()
            if not need(5 + len) then return false end
            at = at + 5 + len
        elseif kind == 12 then -- ERR
            if not need(4) then return false end
            p:add(M.err, r(at + 1, 1))
            at = at + 4
        else
            return false -- a payload this file does not know: leave the rest to Wireshark
        end
        p:set_len(at - start)
        kind = next_kind
    end
    return at == n
end

-- A whole message: HDR with its CS ID map, then the payload chain.
local function mikey_walk(r, tree)
    local n = r:len()
    if n < 10 then return end
    local t = tree:add(mk, r)
    t:add(M.data_type, r(1, 1))
    t:append_text(": " .. (data_types[r(1, 1):uint()] or "unknown data type"))
    t:add(M.csb_id, r(4, 4))
    local cs_count, map_type = r(8, 1):uint(), r(9, 1):uint()
    t:add(M.map_type, r(9, 1))
    local at = 10
    if map_type == 0 then
        at = at + 9 * cs_count
    elseif map_type == 2 then
        for _ = 1, cs_count do
            if at + 3 > n then return end
            at = at + 3 + r(at + 2, 1):bitfield(1, 7)
            if at + 2 > n then return end
            at = at + 2 + r(at, 2):uint()
            if at + 1 > n then return end
            at = at + 1 + r(at, 1):uint()
        end
    end
    if at > n or not walk_chain(r, t, r(2, 1):uint(), at, n) then
        t:add_proto_expert_info(E.short)
    end
end

-- The KMS's HTTP bodies (application/mikey) carry the message base64-encoded (TS 33.328 §6.2.2
-- ... §6.2.3 send it as text): Wireshark 4.0 reads that text as binary MIKEY. Decode it first.
local function mikey_bytes(range)
    if range:len() >= 4 and range(0, 1):uint() == 1 then return range end
    local text = range:string()
    if not text:match("^[A-Za-z0-9+/=\r\n]+$") then return nil end
    local bytes = ByteArray.new(text, true):base64_decode()
    if bytes:len() < 10 or bytes:get_index(0) ~= 1 then return nil end
    return bytes:tvb("MIKEY (base64-decoded)")()
end

function mk.dissector(tvb, pinfo, tree)
    for _, fi in ipairs({ mikey_field() }) do
        local ok, r = pcall(mikey_bytes, fi.range)
        if ok and r then pcall(mikey_walk, r, tree) end
    end
end
register_postdissector(mk)

---------------------------------------------------------------------------------------------------
-- MBMS XML bodies as XML

local media_types = DissectorTable.get("media_type")
for _, t in ipairs({ "register", "register-response", "deregister", "msk", "msk-response",
    "authorize", "btid", "naf-key-info", "protocol-description", "user-service-description", "envelope" }) do
    media_types:add("application/mbms-" .. t .. "+xml", xml_dissector)
end
media_types:add("application/vnd.3gpp.bsf+xml", xml_dissector)

---------------------------------------------------------------------------------------------------
-- a=key-mgmt:mikey at media level

local km = Proto("keysim_keymgmt", "SDP key-mgmt at media level (RFC 4567)")
local K = { data = ProtoField.bytes("keysim_keymgmt.mikey", "MIKEY message (base64-decoded)") }
km.fields = K
local media_attr = Field.new("sdp.media_attr")
function km.dissector(tvb, pinfo, tree)
    for _, fi in ipairs({ media_attr() }) do
        local text = fi.value
        local b64 = text and text:match("^key%-mgmt:mikey%s+(%S+)")
        if b64 then
            local ok, bytes = pcall(function() return ByteArray.new(b64, true):base64_decode() end)
            if ok and bytes and bytes:len() > 0 then
                local sub = bytes:tvb("MIKEY (a=key-mgmt)")
                local t = tree:add(km, fi.range)
                t:add(K.data, sub())
                -- Wireshark 4.0 knows only RFC 3830's data types (0-6); the rest is decoded here.
                if mikey_dissector and sub(1, 1):uint() <= 6 then
                    pcall(function() mikey_dissector:call(sub, pinfo, t) end)
                else
                    pcall(mikey_walk, sub(), t)
                end
            end
        end
    end
end
register_postdissector(km)

---------------------------------------------------------------------------------------------------
-- The MBMS bearer's SRTP: announced in the User Service Description (TS 26.346), which a capture of
-- the key management does not carry, so Wireshark has no SDP to find it by. RTP version 2 on a UDP
-- port nothing else claims (no padding, extension or CSRC; not an RTCP packet type, RFC 5761 §4)
-- is taken as RTP.

local rtp_dissector = Dissector.get("rtp")
local bearer = Proto("keysim_bearer", "MBMS bearer RTP (heuristic)")
local function bearer_heuristic(tvb, pinfo, tree)
    if tvb:len() < 13 then return false end
    local b0, b1 = tvb(0, 1):uint(), tvb(1, 1):uint()
    local pt = b1 % 128
    if b0 ~= 0x80 or (pt >= 72 and pt <= 76) then return false end
    rtp_dissector:call(tvb, pinfo, tree)
    return true
end
bearer:register_heuristic("udp", bearer_heuristic)
