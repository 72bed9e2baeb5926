// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title SpareCycles payout vault: one ERC-20 token, paid out against the operator's signed vouchers.
/// @notice Requesters (or the operator) deposit tokens. The marketplace operator signs, off chain, an
/// EIP-712 voucher "provider has earned cumulativeAmount in all, ever"; `claim` pays the provider the
/// part of it not claimed yet. Anyone may submit a claim (a relayer pays the gas), but the tokens always
/// go to the provider named in the voucher.
///
/// Two roles, kept apart on purpose:
/// - `signer` is the operator's hot key, held by the marketplace server to sign vouchers. It cannot move
///   tokens by itself or change any setting; it can only promise payouts.
/// - `owner` is the deployer, meant to be a cold key. Its only power is `rotateSigner`: when the hot key
///   leaks or is retired, the owner installs a new one, and every voucher signed by the old key stops
///   being accepted (the server re-signs each provider's latest cumulative amount with the new key).
/// The owner is fixed at deployment; there is no upgrade, pause or withdrawal path.
///
/// A replayed voucher, or one lower than what the provider already claimed, pays nothing: `claim`
/// returns 0 without reverting (and emits nothing), so a relayer that submits a stale claim, or a claim
/// sent twice, wastes no more than its gas and breaks no batch. A voucher that is not signed by the
/// current signer always reverts, whatever its amount.
contract PayoutVault {
    /// @dev keccak256 of the EIP-712 type strings, exactly as app/protocol/signing.py declares them.
    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant VOUCHER_TYPEHASH = keccak256("Voucher(address provider,uint256 cumulativeAmount)");
    bytes32 private constant NAME_HASH = keccak256("SpareCycles Payouts");
    bytes32 private constant VERSION_HASH = keccak256("1");

    /// @dev Half the order of secp256k1: a signature with a larger s is the mirror image of a valid
    /// one (EIP-2), rejected so that each voucher has exactly one accepted signature.
    uint256 private constant HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice The token deposited and paid out.
    address public immutable token;
    /// @notice The key allowed to rotate the signer: the deployer, fixed for the vault's life.
    address public immutable owner;
    /// @notice The operator key whose vouchers `claim` accepts now.
    address public signer;
    /// @notice Tokens paid to each provider so far, in total (the cumulative amount of its last paid voucher).
    mapping(address provider => uint256 amount) public claimed;

    event Deposited(address indexed from, uint256 amount);
    event Claimed(address indexed provider, uint256 amount, uint256 cumulativeAmount);
    event SignerChanged(address indexed oldSigner, address indexed newSigner);

    error ZeroAddress();
    error NotAContract(address account);
    error NotOwner(address caller);
    error ZeroAmount();
    /// @dev The signature is not 65 bytes, has v other than 27 or 28, a high s, or recovers no address.
    error MalformedSignature();
    /// @dev The voucher is signed, but by `recovered`, not by the current signer (another key, an old
    /// key, or a voucher made for another vault, chain or amount, which recovers to a random address).
    error NotSignedByOperator(address recovered);
    error TokenTransferFailed();

    constructor(address token_, address signer_) {
        if (token_.code.length == 0) revert NotAContract(token_);
        if (signer_ == address(0)) revert ZeroAddress();
        token = token_;
        owner = msg.sender;
        signer = signer_;
        emit SignerChanged(address(0), signer_);
    }

    /// @notice Move `amount` tokens from the caller into the vault (approve the vault first).
    function deposit(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        _callToken(
            abi.encodeWithSignature("transferFrom(address,address,uint256)", msg.sender, address(this), amount)
        );
        emit Deposited(msg.sender, amount);
    }

    /// @notice Pay `provider` what its voucher promises beyond what it has already claimed.
    /// @return paid The tokens sent to `provider`: 0 when the voucher is not above `claimed(provider)`.
    function claim(address provider, uint256 cumulativeAmount, bytes calldata signature)
        external
        returns (uint256 paid)
    {
        if (provider == address(0)) revert ZeroAddress();
        address recovered = _recover(voucherDigest(provider, cumulativeAmount), signature);
        if (recovered != signer) revert NotSignedByOperator(recovered);
        uint256 already = claimed[provider];
        if (cumulativeAmount <= already) return 0;
        paid = cumulativeAmount - already;
        claimed[provider] = cumulativeAmount; // before the transfer: a re-entering token finds nothing owed
        _callToken(abi.encodeWithSignature("transfer(address,uint256)", provider, paid));
        emit Claimed(provider, paid, cumulativeAmount);
    }

    /// @notice Replace the operator's signing key; vouchers signed by the old key are refused from now on.
    function rotateSigner(address newSigner) external {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        if (newSigner == address(0)) revert ZeroAddress();
        emit SignerChanged(signer, newSigner);
        signer = newSigner;
    }

    /// @notice The EIP-712 domain separator: name "SpareCycles Payouts", version "1", this chain, this vault.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// @notice The EIP-712 digest the operator signs for a voucher.
    function voucherDigest(address provider, uint256 cumulativeAmount) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(VOUCHER_TYPEHASH, provider, cumulativeAmount));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @dev The address that signed `digest`; reverts on anything but a canonical 65-byte (r, s, v) signature.
    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address recovered) {
        if (signature.length != 65) revert MalformedSignature();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > HALF_CURVE_ORDER || (v != 27 && v != 28)) revert MalformedSignature();
        recovered = ecrecover(digest, v, r, s);
        if (recovered == address(0)) revert MalformedSignature();
    }

    /// @dev Call the token (ERC-20 transfer or transferFrom) and require success. A token that
    /// reverts makes this revert with the token's own reason ("transfer amount exceeds allowance"), so
    /// the caller learns what to fix; a returned value other than true is TokenTransferFailed. No
    /// returned data counts as success (tokens that predate the standard's bool); the constructor
    /// checked that the token address holds code, so an empty answer is not a call to nothing.
    function _callToken(bytes memory data) private {
        (bool ok, bytes memory answer) = token.call(data);
        if (!ok) {
            assembly {
                revert(add(answer, 32), mload(answer))
            }
        }
        if (answer.length != 0 && (answer.length != 32 || abi.decode(answer, (uint256)) != 1)) {
            revert TokenTransferFailed();
        }
    }
}
